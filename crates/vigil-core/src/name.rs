//! Distinguished-name comparison (RFC 5280 §7.1).
//!
//! Names are compared RDN by RDN: the same attribute types in the same
//! order, and string values equal after the simplified RFC 4518 preparation
//! that RFC 5280 §7.1 asks for (insignificant whitespace removed, case
//! folded). Values of other types must be byte-identical. Each name is
//! reduced once to a comparison key, so hot paths compare bytes.

use x509_parser::der_parser::asn1_rs::{Any, Tag};
use x509_parser::prelude::{FromDer, X509Name};

/// Whether two DER-encoded Names denote the same name.
pub(crate) fn names_match(a: &[u8], b: &[u8]) -> bool {
    a == b || name_key(a) == name_key(b)
}

/// The comparison key of a DER Name; unparsable names key on their bytes.
pub(crate) fn name_key(der: &[u8]) -> Vec<u8> {
    match X509Name::from_der(der) {
        Ok(([], name)) => key_of(&name),
        _ => {
            let mut raw = vec![0xff];
            raw.extend_from_slice(der);
            raw
        }
    }
}

pub(crate) fn key_of(name: &X509Name<'_>) -> Vec<u8> {
    assemble(name.iter_rdn().map(|rdn| {
        rdn.iter()
            .map(|atv| {
                let value = match prepared(atv.attr_value()) {
                    Some(s) => AttrValue::Text(s),
                    None => AttrValue::Raw(atv.attr_value().data),
                };
                attribute(atv.attr_type().as_bytes(), &value)
            })
            .collect()
    }))
}

/// An attribute value as the key holds it.
pub(crate) enum AttrValue<'a> {
    /// A directory string, already prepared ([`prepare_text`]).
    Text(String),
    /// Any other type: its content octets, compared exactly.
    Raw(&'a [u8]),
}

/// One attribute's part of the key: the type's OID content octets, then
/// the value.
pub(crate) fn attribute(oid: &[u8], value: &AttrValue<'_>) -> Vec<u8> {
    let mut a = oid.to_vec();
    a.push(0);
    match value {
        AttrValue::Text(s) => {
            a.push(1);
            a.extend_from_slice(s.as_bytes());
        }
        AttrValue::Raw(data) => {
            a.push(2);
            a.extend_from_slice(data);
        }
    }
    a
}

/// The key of a sequence of RDNs, each given as its attributes' parts.
pub(crate) fn assemble(rdns: impl Iterator<Item = Vec<Vec<u8>>>) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    for mut attrs in rdns {
        // A multi-valued RDN is a SET: order does not matter.
        attrs.sort();
        for a in attrs {
            key.extend_from_slice(&(a.len() as u32).to_be_bytes());
            key.extend_from_slice(&a);
        }
        key.push(0xfe);
    }
    key
}

/// The value of a directory-string attribute, prepared; `None` for other
/// types (compared by their bytes).
pub(crate) fn prepared_value(value: &Any<'_>) -> Option<String> {
    prepared(value)
}

/// RFC 4518 preparation as [`names_match`] applies it to a string value.
pub(crate) fn prepare_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Simplified RFC 4518 string preparation: case folded by lowercasing,
/// leading/trailing whitespace removed, inner runs collapsed to one space.
fn prepared(value: &Any<'_>) -> Option<String> {
    let text = match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(value.data).ok()?.to_owned()
        }
        Tag::BmpString => {
            if !value.data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = value
                .data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()?
        }
        _ => return None,
    };
    Some(prepare_text(&text))
}
