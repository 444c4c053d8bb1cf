//! The one place times and bytes become text and back: RFC 3339 for
//! instants (Unix seconds), lowercase hex for serials and digests.
//!
//! Inside the core and the runtime these values stay typed (`i64` Unix
//! seconds, `[u8; 32]`, serial bytes); the contract JSON is written through
//! the [`ser`] helpers, and only operator input (a `--at` flag, a deny
//! rule's `expires`) is parsed with [`parse_rfc3339`] or [`unhex`].

/// Formats Unix seconds as RFC 3339 (UTC, `Z`, whole seconds), e.g.
/// `2020-01-01T00:00:00Z`. An instant RFC 3339 cannot write (a year past
/// 9999 or before 0) comes out as its decimal seconds, never a panic.
pub fn rfc3339(secs: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Parses RFC 3339 (any offset, optional fraction) to Unix seconds, the
/// fraction dropped; `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// Lowercase hex (no formatting machinery: events and verdicts carry
/// serials in hex, so this runs per connection torn down).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// The bytes of hex text (pairs of digits, either case, no separators);
/// `None` for anything else. `<[u8; 32]>::try_from` on the result reads a
/// digest.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    fn digit(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A non-negative INTEGER's content octets (big-endian; a cRLNumber, at
/// most 20 octets by RFC 5280 §5.2.3, but any length is taken) in decimal,
/// as `openssl crl -text` writes it.
pub fn decimal(octets: &[u8]) -> String {
    let mut number: Vec<u8> = octets.iter().copied().skip_while(|&b| b == 0).collect();
    if number.is_empty() {
        return "0".into();
    }
    let mut digits = Vec::with_capacity(number.len() * 3);
    while !number.is_empty() {
        // One long division by 10, most significant octet first.
        let mut rest = 0u16;
        for octet in &mut number {
            let value = (rest << 8) | u16::from(*octet);
            *octet = u8::try_from(value / 10).unwrap_or(u8::MAX);
            rest = value % 10;
        }
        digits.push(b'0' + u8::try_from(rest).unwrap_or(0));
        let zeros = number.iter().take_while(|&&b| b == 0).count();
        number.drain(..zeros);
    }
    digits.iter().rev().map(|&d| char::from(d)).collect()
}

/// `serialize_with` helpers writing typed fields as the contract text.
pub mod ser {
    use serde::Serializer;

    /// Bytes (a serial, a digest) as lowercase hex.
    pub fn hex<S: Serializer, B: AsRef<[u8]>>(bytes: &B, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes.as_ref()))
    }

    /// Optional bytes as lowercase hex, `null` when absent.
    pub fn hex_opt<S: Serializer, B: AsRef<[u8]>>(
        bytes: &Option<B>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => hex(bytes, s),
            None => s.serialize_none(),
        }
    }

    /// Optional INTEGER content octets (a cRLNumber) in decimal, `null`
    /// when absent.
    pub fn decimal_opt<S: Serializer, B: AsRef<[u8]>>(
        octets: &Option<B>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match octets {
            Some(octets) => s.serialize_str(&super::decimal(octets.as_ref())),
            None => s.serialize_none(),
        }
    }

    /// Unix seconds as RFC 3339.
    pub fn rfc3339<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*secs))
    }

    /// Optional Unix seconds as RFC 3339, `null` when absent.
    pub fn rfc3339_opt<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match secs {
            Some(secs) => rfc3339(secs, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_reads_integers_of_any_length() {
        assert_eq!(decimal(&[0x02]), "2");
        assert_eq!(decimal(&[0x00, 0x01, 0x00]), "256");
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0, 0]), "0");
        assert_eq!(decimal(&[0xff; 8]), u64::MAX.to_string());
        assert_eq!(decimal(&[0xff; 16]), u128::MAX.to_string());
        // 2^160 - 1, the largest 20-octet cRLNumber.
        assert_eq!(
            decimal(&[0xff; 20]),
            "1461501637330902918203684832716283019655932542975"
        );
    }

    #[test]
    fn rfc3339_round_trips_from_1970_to_9999() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_164_800, "2024-02-29T00:00:00Z"),
            (1_577_836_800, "2020-01-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(secs), text);
            assert_eq!(parse_rfc3339(text), Some(secs));
        }
    }

    #[test]
    fn rfc3339_parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.999Z"), Some(1));
    }

    #[test]
    fn bad_rfc3339_is_none_and_unwritable_instants_do_not_panic() {
        for bad in [
            "",
            "2024",
            "2023-02-29T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00",
            "2024-01-01T00:00:00",
            "10000-01-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "é",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
        assert_eq!(rfc3339(i64::MIN), i64::MIN.to_string());
        assert_eq!(rfc3339(253_402_300_800), "253402300800");
    }

    #[test]
    fn hex_round_trips_and_bad_hex_is_none() {
        let bytes = [0x00, 0x7f, 0x80, 0xab, 0xff];
        assert_eq!(hex(&bytes), "007f80abff");
        assert_eq!(unhex("007f80abff").as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("007F80ABFF").as_deref(), Some(&bytes[..]));
        assert_eq!(unhex("").as_deref(), Some(&[][..]));
        assert_eq!(hex(&[]), "");
        for bad in ["0", "abc", "zz", "0g", "ab:cd", " ab", "+1", "é0"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
        let digest = [0xa5; 32];
        assert_eq!(
            unhex(&hex(&digest)).and_then(|v| <[u8; 32]>::try_from(v).ok()),
            Some(digest)
        );
    }
}
