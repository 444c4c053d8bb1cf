//! Minimal DER / PEM helpers: just enough to build the one extension rcgen cannot
//! (authorityInfoAccess), to corrupt a signature without breaking the encoding, and
//! for the little parsing the responder does.
//!
//! The DER reader ([`read_header`], [`Reader`]) and writer ([`tlv`]) are public so that
//! the workspace's tests take structures apart with the same code as the fixtures
//! (one DER reader, not one per test file).

use crate::FixtureError;

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
const TAG_BIT_STRING: u8 = 0x03;
/// `[6] IMPLICIT IA5String`: the uniformResourceIdentifier choice of GeneralName.
const TAG_GENERAL_NAME_URI: u8 = 0x86;

/// OID 1.3.6.1.5.5.7.1.1 (id-pe-authorityInfoAccess), as rcgen wants it.
pub(crate) const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// DER content octets of OID 1.3.6.1.5.5.7.48.1 (id-ad-ocsp).
const OID_AD_OCSP_CONTENT: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];

/// Encodes one tag-length-value with a definite, minimal length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        // Fits in the short form by the branch condition.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        // At most size_of::<usize>() bytes, so this never truncates.
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// The DER value of an authorityInfoAccess extension holding a single OCSP responder URI:
/// `SEQUENCE { SEQUENCE { id-ad-ocsp, [6] uri } }`.
pub(crate) fn aia_ocsp_value(uri: &str) -> Vec<u8> {
    let mut desc = tlv(TAG_OID, OID_AD_OCSP_CONTENT);
    desc.extend(tlv(TAG_GENERAL_NAME_URI, uri.as_bytes()));
    tlv(TAG_SEQUENCE, &tlv(TAG_SEQUENCE, &desc))
}

/// Reads the header of the TLV at the start of `input`.
/// Returns `(tag, header_len, content_len)`: a definite length of at most
/// `size_of::<usize>()` octets; the content is not checked to be there.
pub fn read_header(input: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > std::mem::size_of::<usize>() {
        return None; // indefinite or absurd lengths are not DER
    }
    let len_bytes = input.get(2..2 + n)?;
    let len = len_bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((tag, 2 + n, len))
}

/// Returns a copy of a DER certificate (or CRL: same outer shape) whose signature value
/// has its last byte XOR-ed with 0x01. Every length stays the same, so the result is
/// still well-formed DER; only the signature is wrong.
///
/// The last byte is chosen because for ECDSA it lies inside the `s` INTEGER (so the
/// inner `Ecdsa-Sig-Value` stays parseable) and for RSA/Ed25519 it is plain signature data.
pub(crate) fn corrupt_signature(der: &[u8]) -> Result<Vec<u8>, FixtureError> {
    let bad =
        || FixtureError::Generation("cannot locate the signature in a DER certificate".into());
    let (tag, hdr, len) = read_header(der).ok_or_else(bad)?;
    if tag != TAG_SEQUENCE || hdr + len != der.len() {
        return Err(bad());
    }
    // Walk tbsCertificate, signatureAlgorithm, signatureValue.
    let mut pos = hdr;
    let mut last = None;
    for _ in 0..3 {
        let (tag, h, l) = read_header(der.get(pos..).ok_or_else(bad)?).ok_or_else(bad)?;
        last = Some((tag, pos, h, l));
        pos = pos.checked_add(h + l).ok_or_else(bad)?;
    }
    let (tag, start, h, l) = last.ok_or_else(bad)?;
    // The BIT STRING must be the final element, with at least one signature byte after
    // the "unused bits" octet.
    if tag != TAG_BIT_STRING || pos != der.len() || l < 2 || der.get(start + h) != Some(&0) {
        return Err(bad());
    }
    let mut out = der.to_vec();
    let idx = out.len() - 1;
    out[idx] ^= 0x01;
    Ok(out)
}

/// Strips leading zero bytes; zero itself becomes `[0]`.
pub(crate) fn minimal_unsigned(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    if skip == bytes.len() {
        vec![0]
    } else {
        bytes[skip..].to_vec()
    }
}

/// Lower-case hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A cursor over a sequence of DER TLVs, for the little parsing the responder does
/// (OCSP requests, certificate names and keys, CRL entries) and for tests that take
/// certificates and CRLs apart. Every method returns `None` on malformed or unexpected
/// input instead of panicking.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`, a sequence of TLVs (e.g. the content of a SEQUENCE).
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every TLV has been consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The tag of the next TLV, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Consumes the next TLV: `(tag, content, whole encoding)`.
    pub fn read_any(&mut self) -> Option<(u8, &'a [u8], &'a [u8])> {
        let (tag, hdr, len) = read_header(self.data)?;
        let end = hdr.checked_add(len)?;
        let whole = self.data.get(..end)?;
        self.data = &self.data[end..];
        Some((tag, &whole[hdr..], whole))
    }

    /// Consumes the next TLV, which must have tag `tag`, and returns its content.
    pub fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read_any()? {
            (t, content, _) if t == tag => Some(content),
            _ => None,
        }
    }

    /// Like [`Reader::read`] but returns the whole encoding, header included.
    pub fn read_element(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read_any()? {
            (t, _, whole) if t == tag => Some(whole),
            _ => None,
        }
    }

    /// Consumes the next TLV only if it has tag `tag`. `Some(None)`: absent.
    pub fn read_optional(&mut self, tag: u8) -> Option<Option<&'a [u8]>> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Some(None)
        }
    }
}

/// The content of `der` if it is exactly one TLV with tag `tag`.
pub(crate) fn single(der: &[u8], tag: u8) -> Option<&[u8]> {
    let mut r = Reader::new(der);
    let content = r.read(tag)?;
    r.is_empty().then_some(content)
}

/// Subject name (whole `Name` encoding) and subjectPublicKey (the BIT STRING value
/// without its unused-bits octet) of a DER certificate.
pub(crate) fn cert_subject_and_key(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut tbs = Reader::new(single(cert, TAG_SEQUENCE)?);
    let mut r = Reader::new(tbs.read(TAG_SEQUENCE)?);
    r.read_optional(0xa0)?; // version
    r.read(0x02)?; // serialNumber
    r.read(TAG_SEQUENCE)?; // signature
    r.read(TAG_SEQUENCE)?; // issuer
    r.read(TAG_SEQUENCE)?; // validity
    let subject = r.read_element(TAG_SEQUENCE)?;
    let mut spki = Reader::new(r.read(TAG_SEQUENCE)?);
    spki.read(TAG_SEQUENCE)?;
    match spki.read(TAG_BIT_STRING)?.split_first() {
        Some((0, key)) => Some((subject, key)),
        _ => None,
    }
}

/// UTCTime (`0x17`) or GeneralizedTime (`0x18`) content, as written by this crate and
/// rcgen: `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ`.
pub(crate) fn parse_time(tag: u8, value: &[u8]) -> Option<time::OffsetDateTime> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i32>().ok();
    let (year, rest) = match (tag, text.len()) {
        // RFC 5280 section 4.1.2.5.1: two-digit years 50-99 are 19xx, 00-49 are 20xx.
        (0x17, 12) => {
            let yy = num(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (0x18, 14) => (num(0..4)?, 4),
        _ => return None,
    };
    let field = |i: usize| num(rest + 2 * i..rest + 2 * i + 2);
    let month = time::Month::try_from(u8::try_from(field(0)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(field(1)?).ok()?).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(field(2)?).ok()?,
        u8::try_from(field(3)?).ok()?,
        u8::try_from(field(4)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// A GeneralizedTime TLV `YYYYMMDDHHMMSSZ` (RFC 5280 section 4.1.2.5.2: UTC, whole
/// seconds), as OCSP uses for every time. Years outside 0000-9999 are clamped.
pub(crate) fn generalized_time(t: time::OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year().clamp(0, 9999),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x18, text.as_bytes())
}

/// Decodes base64 (standard or URL-safe alphabet, padding optional, no whitespace).
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Masked to one octet.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing sextet cannot encode a whole octet.
    (bits < 6).then_some(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `der` (any bytes) as RFC 7468 PEM with the label `label`: base64 in 64-column lines,
/// LF line endings, `-----BEGIN {label}-----` and `-----END {label}-----` lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn pem_wraps_at_64() {
        let p = pem("TEST", &[0u8; 100]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN TEST-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END TEST-----"));
    }

    #[test]
    fn tlv_lengths() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 0x02, 1, 2]);
        let long = tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(read_header(&longer), Some((0x04, 4, 300)));
    }

    #[test]
    fn aia_value_shape() {
        let v = aia_ocsp_value("http://x/ocsp/ca");
        assert_eq!(v[0], 0x30);
        assert!(v.ends_with(b"http://x/ocsp/ca"));
    }

    #[test]
    fn minimal_and_hex() {
        assert_eq!(minimal_unsigned(&[0, 0, 5, 0]), vec![5, 0]);
        assert_eq!(minimal_unsigned(&[0, 0]), vec![0]);
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }

    #[test]
    fn base64_round_trip() {
        for len in 0..20u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            let text = base64(&data);
            assert_eq!(base64_decode(&text), Some(data.clone()));
            let url: String = text
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_");
            assert_eq!(base64_decode(&url), Some(data));
        }
        assert_eq!(base64_decode("Zg="), Some(b"f".to_vec()));
        assert!(base64_decode("Z").is_none());
        assert!(base64_decode("Zm9v YmFy").is_none());
    }

    #[test]
    fn times_round_trip() {
        let t = time::macros::datetime!(2031-02-03 04:05:06 UTC);
        let g = generalized_time(t);
        assert_eq!(&g[..2], &[0x18, 15]);
        assert_eq!(parse_time(0x18, &g[2..]), Some(t));
        assert_eq!(parse_time(0x17, b"310203040506Z"), Some(t));
        assert_eq!(
            parse_time(0x17, b"990203040506Z").map(|t| t.year()),
            Some(1999)
        );
        assert!(parse_time(0x17, b"3102030405Z").is_none());
        assert!(parse_time(0x18, b"20311303040506Z").is_none());
    }

    #[test]
    fn reader_walks_and_rejects() {
        let seq = tlv(0x30, &[tlv(0x02, &[1]), tlv(0x04, &[2, 3])].concat());
        let mut r = Reader::new(single(&seq, 0x30).expect("sequence"));
        assert_eq!(r.read_optional(0xa0), Some(None));
        assert_eq!(r.read(0x02), Some(&[1u8][..]));
        assert_eq!(r.read_element(0x04), Some(&[0x04, 2, 2, 3][..]));
        assert!(r.is_empty());
        assert!(single(&seq[..seq.len() - 1], 0x30).is_none());
        assert!(single(&[seq.clone(), vec![0]].concat(), 0x30).is_none());
        assert!(Reader::new(&[0x02, 0x85, 1, 1, 1, 1, 1])
            .read_any()
            .is_none());
    }

    #[test]
    fn corrupt_rejects_garbage() {
        assert!(corrupt_signature(&[0x30, 0x00]).is_err());
        assert!(corrupt_signature(&[]).is_err());
    }
}
