//! A minimal, strict DER reader (X.690 §10) for the structures Vigil parses
//! itself: CRLs, where a streaming walk is much cheaper than a full parse.
//!
//! Only definite lengths in minimal form are accepted; anything else is an
//! error, never a panic.

/// ASN.1 universal and context tags used by the CRL parser.
pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const ENUMERATED: u8 = 0x0a;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const UTC_TIME: u8 = 0x17;
    pub(crate) const GENERALIZED_TIME: u8 = 0x18;
    pub(crate) const SEQUENCE: u8 = 0x30;
    /// `[0] EXPLICIT` (constructed, context-specific 0).
    pub(crate) const CONTEXT_0: u8 = 0xa0;
}

/// Why a DER walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DerError {
    /// Ran out of bytes inside an element.
    Truncated,
    /// A tag other than the expected one.
    UnexpectedTag { expected: u8, found: u8 },
    /// Indefinite, non-minimal or oversized length, or high tag number.
    BadLength,
    /// A value that does not follow its type's encoding rules.
    BadValue,
    /// Bytes left over after the outermost element.
    TrailingData,
}

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated DER"),
            Self::UnexpectedTag { expected, found } => {
                write!(
                    f,
                    "unexpected DER tag 0x{found:02x} (expected 0x{expected:02x})"
                )
            }
            Self::BadLength => f.write_str("invalid DER length"),
            Self::BadValue => f.write_str("invalid DER value"),
            Self::TrailingData => f.write_str("trailing data after DER element"),
        }
    }
}

/// A cursor over DER bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads any element: returns (tag, value, whole element including header).
    pub(crate) fn read_any(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), DerError> {
        let data = self.data;
        let (&tag, rest) = data.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            // High tag numbers never occur in the structures we read.
            return Err(DerError::BadLength);
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(DerError::BadLength);
            }
            if rest.len() < n {
                return Err(DerError::Truncated);
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            if len_bytes[0] == 0 {
                return Err(DerError::BadLength);
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(DerError::BadLength);
            }
            len
        };
        if rest.len() < len {
            return Err(DerError::Truncated);
        }
        let header = data.len() - rest.len();
        let (value, after) = rest.split_at(len);
        let whole = &data[..header + len];
        self.data = after;
        Ok((tag, value, whole))
    }

    /// Reads an element that must carry `expected` as its tag; returns its value.
    pub(crate) fn read(&mut self, expected: u8) -> Result<&'a [u8], DerError> {
        let mut probe = *self;
        let (tag, value, _) = probe.read_any()?;
        if tag != expected {
            return Err(DerError::UnexpectedTag {
                expected,
                found: tag,
            });
        }
        *self = probe;
        Ok(value)
    }

    /// Like [`Reader::read`] but returns the whole element (header included).
    pub(crate) fn read_element(&mut self, expected: u8) -> Result<&'a [u8], DerError> {
        let mut probe = *self;
        let (tag, _, whole) = probe.read_any()?;
        if tag != expected {
            return Err(DerError::UnexpectedTag {
                expected,
                found: tag,
            });
        }
        *self = probe;
        Ok(whole)
    }

    /// Reads the element only when its tag is `expected`.
    pub(crate) fn read_optional(&mut self, expected: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(expected) {
            self.read(expected).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DerError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData)
        }
    }
}

/// Reads exactly one element with tag `expected` spanning all of `data`.
pub(crate) fn single(data: &[u8], expected: u8) -> Result<&[u8], DerError> {
    let mut r = Reader::new(data);
    let value = r.read(expected)?;
    r.finish()?;
    Ok(value)
}

/// Encodes one element (definite, minimal length).
pub(crate) fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// DER BOOLEAN (X.690 §11.1: TRUE is 0xff).
pub(crate) fn boolean(value: &[u8]) -> Result<bool, DerError> {
    match value {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err(DerError::BadValue),
    }
}

/// Validates a DER INTEGER's encoding and returns its content octets.
pub(crate) fn integer(value: &[u8]) -> Result<&[u8], DerError> {
    match value {
        [] => Err(DerError::BadValue),
        [0x00, next, ..] if next & 0x80 == 0 => Err(DerError::BadValue),
        [0xff, next, ..] if next & 0x80 != 0 => Err(DerError::BadValue),
        _ => Ok(value),
    }
}

/// A non-negative INTEGER that fits in a u64 (CRL numbers, RFC 5280 §5.2.3).
pub(crate) fn small_unsigned(value: &[u8]) -> Result<u64, DerError> {
    let value = integer(value)?;
    if value[0] & 0x80 != 0 {
        return Err(DerError::BadValue);
    }
    let trimmed = match value {
        [0x00, rest @ ..] => rest,
        _ => value,
    };
    if trimmed.len() > 8 {
        return Err(DerError::BadValue);
    }
    Ok(trimmed
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Parses UTCTime or GeneralizedTime (RFC 5280 §4.1.2.5) to Unix seconds.
///
/// UTCTime years 50..99 are 19xx and 00..49 are 20xx; both forms must be in
/// Zulu time with seconds, as RFC 5280 requires.
pub(crate) fn time(tag: u8, value: &[u8]) -> Result<i64, DerError> {
    let digits = |s: &[u8]| -> Result<i64, DerError> {
        s.iter().try_fold(0i64, |acc, b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(DerError::BadValue)
            }
        })
    };
    let (year, rest) = match (tag, value.len()) {
        (tag::UTC_TIME, 13) => {
            let yy = digits(&value[0..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &value[2..])
        }
        (tag::GENERALIZED_TIME, 15) => (digits(&value[0..4])?, &value[4..]),
        _ => return Err(DerError::BadValue),
    };
    if rest[10] != b'Z' {
        return Err(DerError::BadValue);
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(DerError::BadValue);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_to_unix_seconds() {
        assert_eq!(time(tag::UTC_TIME, b"700101000000Z"), Ok(0));
        assert_eq!(time(tag::UTC_TIME, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(
            time(tag::GENERALIZED_TIME, b"20200101000000Z"),
            Ok(1_577_836_800)
        );
        assert_eq!(
            time(tag::GENERALIZED_TIME, b"20240229120000Z"),
            Ok(1_709_208_000)
        );
        assert!(time(tag::GENERALIZED_TIME, b"20230229120000Z").is_err());
        assert!(time(tag::UTC_TIME, b"700101000000+0100").is_err());
        assert!(time(tag::UTC_TIME, b"7001010000Z").is_err());
    }

    #[test]
    fn lengths_must_be_minimal_and_present() {
        assert_eq!(
            Reader::new(&[0x30, 0x81, 0x05]).read_any().err(),
            Some(DerError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x30, 0x80]).read_any().err(),
            Some(DerError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x30, 0x03, 0x01]).read_any().err(),
            Some(DerError::Truncated)
        );
        assert_eq!(
            single(&[0x02, 0x01, 0x05, 0x00], tag::INTEGER),
            Err(DerError::TrailingData)
        );
        assert_eq!(small_unsigned(&[0x00, 0x80]), Ok(128));
        assert!(integer(&[0x00, 0x01]).is_err());
        let long = encode(tag::OCTET_STRING, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(single(&long, tag::OCTET_STRING).map(<[u8]>::len), Ok(300));
    }
}
