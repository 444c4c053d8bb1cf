//! Distinguished names given as text by an operator (a deny rule's issuer),
//! reduced to the same RFC 5280 §7.1 comparison key as a certificate's DER
//! Name ([`crate::name::key_of`]): so spacing, case and the spelling of
//! attribute types never change what matches, and rendered strings are
//! never compared.
//!
//! Syntax: RFC 4514 §3 attribute type-and-value pairs (`CN=Vigil, O=Acme`),
//! `,` or `;` between RDNs, `+` inside a multi-valued RDN, `\` escapes
//! (`\,` or `\2C`), quoted values (RFC 1779), `#` followed by the hex of a
//! BER/DER value, types by name (`CN`, `commonName`, ...) or dotted OID.
//! Unlike RFC 4514 (which writes the last RDN first), RDNs are read in the
//! order the Name holds them, which is how verdicts render issuers
//! (`CN=..., O=...` for a Name whose first RDN is the CN). Anything that
//! does not parse is an error; a rule is never set on a name that cannot
//! match.

use x509_parser::der_parser::asn1_rs::{Any, FromDer};

use crate::name::{assemble, attribute, prepare_text, prepared_value, AttrValue};

/// A parsed textual name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextName {
    /// The RFC 5280 §7.1 comparison key.
    pub(crate) key: Vec<u8>,
    /// The canonical text: prepared values (case folded, whitespace
    /// collapsed), canonical type names, `, ` and ` + ` separators. Equal
    /// keys have equal canonical texts.
    pub(crate) canonical: String,
}

/// A distinguished name written by an operator (syntax in the module
/// documentation), compared with certificates' DER names under RFC 5280
/// §7.1: spacing, case and type spellings never change what matches.
///
/// ```
/// let name = vigil_core::NameText::parse("cn=Kate ,  O=Acme").unwrap();
/// assert_eq!(name.canonical(), "CN=kate, O=acme");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameText(TextName);

impl NameText {
    /// Parses `text`; an error says what does not parse.
    pub fn parse(text: &str) -> Result<Self, String> {
        parse(text).map(Self)
    }

    /// The canonical text (prepared values, canonical type names).
    pub fn canonical(&self) -> &str {
        &self.0.canonical
    }

    /// Whether the DER Name `name_der` (e.g. a certificate's subject) is
    /// this name.
    pub fn matches(&self, name_der: &[u8]) -> bool {
        crate::name::name_key(name_der) == self.0.key
    }
}

/// Longest name text accepted.
const MAX_LEN: usize = 4096;

/// Parses `text` (see the module documentation).
pub(crate) fn parse(text: &str) -> Result<TextName, String> {
    if text.len() > MAX_LEN {
        return Err(format!("a distinguished name is at most {MAX_LEN} bytes"));
    }
    if text.trim().is_empty() {
        return Err("the distinguished name is empty".into());
    }
    let mut key_rdns = Vec::new();
    let mut texts = Vec::new();
    for rdn in split_unescaped(text, &[',', ';'])? {
        let mut attrs: Vec<(Vec<u8>, String)> = Vec::new();
        for atv in split_unescaped(&rdn, &['+'])? {
            attrs.push(parse_atv(&atv)?);
        }
        attrs.sort();
        texts.push(
            attrs
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
        );
        key_rdns.push(attrs.into_iter().map(|(k, _)| k).collect::<Vec<_>>());
    }
    Ok(TextName {
        key: assemble(key_rdns.into_iter()),
        canonical: texts.join(", "),
    })
}

/// One `type=value`: its part of the key, and its canonical text.
fn parse_atv(atv: &str) -> Result<(Vec<u8>, String), String> {
    let Some((ty, value)) = atv.split_once('=') else {
        return Err(format!("'{}' is not type=value", atv.trim()));
    };
    let ty = ty.trim();
    let (oid, name) = attribute_type(ty)?;
    let value = value.trim_start_matches(' ');
    let (key, shown) = if let Some(hex) = value.strip_prefix('#') {
        let der = decode_hex(hex.trim_end_matches(' '))
            .ok_or_else(|| format!("{ty}: '#' must be followed by the hex of a DER value"))?;
        let any = match Any::from_der(&der) {
            Ok(([], any)) => any,
            _ => return Err(format!("{ty}: the '#' value is not one DER value")),
        };
        match prepared_value(&any) {
            Some(text) => {
                let shown = escape(&text);
                (attribute(&oid, &AttrValue::Text(text)), shown)
            }
            None => (
                attribute(&oid, &AttrValue::Raw(any.data)),
                format!("#{}", crate::text::hex(&der)),
            ),
        }
    } else {
        let text = prepare_text(&unescape(value).map_err(|e| format!("{ty}: {e}"))?);
        let shown = escape(&text);
        (attribute(&oid, &AttrValue::Text(text)), shown)
    };
    Ok((key, format!("{name}={shown}")))
}

/// Attribute types by name (case-insensitive; the first is the canonical
/// one) and their OIDs.
const TYPES: &[(&[&str], &str)] = &[
    (&["CN", "commonName"], "2.5.4.3"),
    (&["SN", "surname"], "2.5.4.4"),
    (&["serialNumber"], "2.5.4.5"),
    (&["C", "countryName"], "2.5.4.6"),
    (&["L", "localityName"], "2.5.4.7"),
    (&["ST", "S", "stateOrProvinceName"], "2.5.4.8"),
    (&["street", "streetAddress"], "2.5.4.9"),
    (&["O", "organizationName"], "2.5.4.10"),
    (&["OU", "organizationalUnitName"], "2.5.4.11"),
    (&["title"], "2.5.4.12"),
    (&["description"], "2.5.4.13"),
    (&["businessCategory"], "2.5.4.15"),
    (&["postalCode"], "2.5.4.17"),
    (&["name"], "2.5.4.41"),
    (&["GN", "givenName"], "2.5.4.42"),
    (&["initials"], "2.5.4.43"),
    (&["generationQualifier"], "2.5.4.44"),
    (&["dnQualifier"], "2.5.4.46"),
    (&["pseudonym"], "2.5.4.65"),
    (&["organizationIdentifier"], "2.5.4.97"),
    (&["UID", "userId"], "0.9.2342.19200300.100.1.1"),
    (&["DC", "domainComponent"], "0.9.2342.19200300.100.1.25"),
    (&["emailAddress", "E", "Email"], "1.2.840.113549.1.9.1"),
];

/// The OID content octets and canonical name of an attribute type.
fn attribute_type(ty: &str) -> Result<(Vec<u8>, String), String> {
    for (names, dotted) in TYPES {
        if names.iter().any(|n| n.eq_ignore_ascii_case(ty)) {
            let oid = encode_oid(dotted).ok_or("internal: bad OID table")?;
            return Ok((oid, names[0].to_owned()));
        }
    }
    let dotted = ty
        .strip_prefix("OID.")
        .or_else(|| ty.strip_prefix("oid."))
        .unwrap_or(ty);
    let oid = encode_oid(dotted).ok_or_else(|| {
        format!("'{ty}' is not a known attribute type (CN, O, OU, C, ...) or a dotted OID")
    })?;
    // A known type given by OID renders by name.
    for (names, known) in TYPES {
        if encode_oid(known).as_deref() == Some(&oid[..]) {
            return Ok((oid, names[0].to_owned()));
        }
    }
    Ok((oid, dotted.to_owned()))
}

/// X.690 §8.19: the content octets of an OBJECT IDENTIFIER.
fn encode_oid(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| {
            if a.is_empty()
                || !a.bytes().all(|b| b.is_ascii_digit())
                || (a.len() > 1 && a.starts_with('0'))
            {
                None
            } else {
                a.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    let (&first, &second) = (arcs.first()?, arcs.get(1)?);
    if first > 2 || (first < 2 && second >= 40) {
        return None;
    }
    let mut out = Vec::new();
    let head = first.checked_mul(40)?.checked_add(second)?;
    for arc in std::iter::once(head).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    Some(out)
}

/// Splits at the separators that are neither escaped nor quoted; segments
/// keep their escapes. An empty segment is an error.
fn split_unescaped(text: &str, seps: &[char]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                match chars.next() {
                    Some(n) => current.push(n),
                    None => return Err("the name ends with a lone '\\'".into()),
                }
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if !quoted && seps.contains(&c) => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return Err("a quoted value is not closed".into());
    }
    out.push(current);
    if out.iter().any(|s| s.trim().is_empty()) {
        return Err("the name has an empty component".into());
    }
    Ok(out)
}

/// RFC 4514 §3 string value (or an RFC 1779 quoted one) to its text.
fn unescape(value: &str) -> Result<String, String> {
    let value = value.trim_end_matches(' ');
    let (body, quoted) = match value.strip_prefix('"') {
        Some(rest) => (
            rest.strip_suffix('"')
                .ok_or("text after the closing quote")?,
            true,
        ),
        None => (value, false),
    };
    let mut bytes = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(n) = chars.next() else {
                return Err("a lone '\\' at the end of a value".into());
            };
            if n.is_ascii_hexdigit() {
                let m = chars
                    .next()
                    .filter(char::is_ascii_hexdigit)
                    .ok_or("'\\' must be followed by a special character or two hex digits")?;
                let pair: String = [n, m].iter().collect();
                bytes.push(u8::from_str_radix(&pair, 16).map_err(|e| e.to_string())?);
            } else if ",+\"\\<>;=# ".contains(n) {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
            } else {
                return Err(format!("'\\{n}' is not an escape"));
            }
        } else if c == '"' && !quoted {
            return Err("an unescaped '\"' inside a value".into());
        } else {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    String::from_utf8(bytes).map_err(|_| "the escaped bytes are not UTF-8".into())
}

/// RFC 4514 §2.4 escaping of a prepared value (no leading or trailing
/// spaces remain after preparation).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        if ",+\"\\<>;=".contains(c) || (i == 0 && c == '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::X509Name;

    fn key(text: &str) -> Vec<u8> {
        parse(text).map(|n| n.key).unwrap_or_default()
    }

    #[test]
    fn spacing_case_and_type_spelling_do_not_matter() {
        let reference = key("CN=Vigil Test Intermediate,O=Vigil");
        assert!(!reference.is_empty());
        for same in [
            "CN=Vigil Test Intermediate, O=Vigil",
            "cn = vigil   test intermediate ;  o=VIGIL",
            "commonName=\"Vigil Test Intermediate\", organizationName=Vigil",
            "2.5.4.3=Vigil\\20Test Intermediate, OID.2.5.4.10=Vigil",
            "CN=#0c17566967696c205465737420496e7465726d656469617465,O=Vigil",
        ] {
            assert_eq!(key(same), reference, "{same}");
            assert_eq!(
                parse(same).map(|n| n.canonical),
                Ok("CN=vigil test intermediate, O=vigil".to_owned())
            );
        }
        // Order and content still matter.
        assert_ne!(key("O=Vigil, CN=Vigil Test Intermediate"), reference);
        assert_ne!(key("CN=Vigil Test Intermediate 2, O=Vigil"), reference);
        // A multi-valued RDN is a set.
        assert_eq!(key("CN=a + OU=b, O=c"), key("OU=b+CN=a,O=c"));
        assert_ne!(key("CN=a + OU=b, O=c"), key("CN=a, OU=b, O=c"));
    }

    #[test]
    fn escapes_keep_separators_inside_values() {
        let n = parse("CN=Acme\\, Inc., O=x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.canonical, "CN=acme\\, inc., O=x");
        assert_eq!(parse(&n.canonical).map(|m| m.key), Ok(n.key));
        assert_eq!(key("CN=\"Acme, Inc.\", O=x"), key("CN=Acme\\2C Inc., O=x"));
    }

    #[test]
    fn what_does_not_parse_is_refused() {
        for bad in [
            "",
            "   ",
            "CN",
            "CN=a,,O=b",
            "Nonsense=a",
            "1=a",
            "3.1=a",
            "CN=a\\",
            "CN=\"a",
            "CN=a\\zz",
            "CN=#zz",
            "CN=#0c05",
            "CN=a\"b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(content.len()).unwrap_or(0)];
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn the_key_is_the_one_a_certificate_name_gets() {
        // Name ::= SEQUENCE OF SET OF { type, value }: a UTF8String CN
        // with a double space, a PrintableString O.
        let atv = |oid: &[u8], tag: u8, value: &str| {
            tlv(
                0x31,
                &tlv(0x30, &[tlv(0x06, oid), tlv(tag, value.as_bytes())].concat()),
            )
        };
        let der = tlv(
            0x30,
            &[
                atv(&[0x55, 0x04, 0x03], 0x0c, "Vigil  Test Intermediate"),
                atv(&[0x55, 0x04, 0x0a], 0x13, "Vigil"),
            ]
            .concat(),
        );
        let (_, name) = X509Name::from_der(&der).unwrap_or_else(|e| panic!("{e}"));
        let rendered = name.to_string();
        let from_der = crate::name::key_of(&name);
        assert_eq!(key(&rendered), from_der, "{rendered}");
        assert_eq!(key("CN=vigil test intermediate,O=VIGIL"), from_der);
        assert_eq!(key("CN=Vigil Test Intermediate, O=Vigil"), from_der);
    }
}
