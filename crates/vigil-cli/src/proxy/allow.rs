//! Authorization: which validated peers a route lets through (`--allow-dns`,
//! `--allow-uri`, `--allow-subject`, `--allow-spki-sha256`). No rule: every
//! peer whose chain validates. Otherwise the leaf must match one rule.
//!
//! Checked in the handshake (after Vigil's verifier accepted the chain), again
//! when the connection is tracked (a resumed session skips the verifier),
//! and again for every open connection when the rules are reloaded.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// The rules as given (text), kept to compare reloads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AllowSpec {
    pub(crate) dns: Vec<String>,
    pub(crate) uri: Vec<String>,
    pub(crate) subject: Vec<String>,
    pub(crate) spki_sha256: Vec<String>,
}

/// Checked rules.
#[derive(Debug, Default)]
pub(crate) struct AllowList {
    /// Lowercase, no trailing dot; `*.` prefix for a one-label wildcard.
    dns: Vec<String>,
    /// Split on `/`; `*` matches one non-empty segment.
    uri: Vec<Vec<String>>,
    /// Compared as names (RFC 5280 §7.1), never as rendered text.
    subject: Vec<vigil_core::NameText>,
    spki: Vec<[u8; 32]>,
}

impl AllowList {
    /// Checks `spec`; the error names the bad rule.
    pub(crate) fn parse(spec: &AllowSpec) -> Result<Self, String> {
        let mut dns = Vec::new();
        for rule in &spec.dns {
            let name = rule.trim().trim_end_matches('.').to_ascii_lowercase();
            let bare = name.strip_prefix("*.").unwrap_or(&name);
            if bare.is_empty()
                || bare.contains('*')
                || !bare.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
            {
                return Err(format!(
                    "allow-dns '{rule}': not a DNS name (a leading '*.' is the only wildcard)"
                ));
            }
            dns.push(name);
        }
        let mut uri = Vec::new();
        for rule in &spec.uri {
            let text = rule.trim();
            let Some((scheme, rest)) = text.split_once("://") else {
                return Err(format!(
                    "allow-uri '{rule}': not a URI such as spiffe://domain/path"
                ));
            };
            if scheme.is_empty() || rest.is_empty() || rest.starts_with('*') {
                return Err(format!(
                    "allow-uri '{rule}': needs a scheme and an authority without wildcard"
                ));
            }
            let segments: Vec<String> = rest.split('/').map(str::to_owned).collect();
            if segments.iter().any(|s| s.contains('*') && s != "*") {
                return Err(format!(
                    "allow-uri '{rule}': '*' stands for a whole path segment only"
                ));
            }
            let mut parts = vec![format!("{}:", scheme.to_ascii_lowercase())];
            let mut segments = segments.into_iter();
            if let Some(authority) = segments.next() {
                parts.push(authority.to_ascii_lowercase());
            }
            parts.extend(segments);
            uri.push(parts);
        }
        let mut subject = Vec::new();
        for rule in &spec.subject {
            subject.push(
                vigil_core::NameText::parse(rule)
                    .map_err(|e| format!("allow-subject '{rule}': {e}"))?,
            );
        }
        let mut spki = Vec::new();
        for rule in &spec.spki_sha256 {
            let hex: String = rule.chars().filter(|c| *c != ':').collect();
            let bytes = decode_hex(hex.trim())
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    format!("allow-spki-sha256 '{rule}': not 64 hex digits (a SHA-256)")
                })?;
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&bytes);
            spki.push(digest);
        }
        Ok(Self {
            dns,
            uri,
            subject,
            spki,
        })
    }

    /// No rule: every validated peer is let through.
    pub(crate) fn is_open(&self) -> bool {
        self.dns.is_empty()
            && self.uri.is_empty()
            && self.subject.is_empty()
            && self.spki.is_empty()
    }

    /// Whether the leaf (DER) matches a rule; the error says what the leaf
    /// carries, for the log.
    pub(crate) fn permits(&self, leaf: &[u8]) -> Result<(), String> {
        if self.is_open() {
            return Ok(());
        }
        let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(leaf) else {
            return Err("the leaf certificate cannot be parsed".into());
        };
        if !self.spki.is_empty() {
            let digest = vigil_core::sha256(cert.public_key().raw);
            if self.spki.contains(&digest) {
                return Ok(());
            }
        }
        if self
            .subject
            .iter()
            .any(|rule| rule.matches(cert.subject().as_raw()))
        {
            return Ok(());
        }
        let subject = cert.subject().to_string();
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => {
                        if self.dns.iter().any(|rule| dns_matches(rule, d)) {
                            return Ok(());
                        }
                        names.push(format!("DNS:{d}"));
                    }
                    GeneralName::URI(u) => {
                        if self.uri.iter().any(|rule| uri_matches(rule, u)) {
                            return Ok(());
                        }
                        names.push(format!("URI:{u}"));
                    }
                    _ => {}
                }
            }
        }
        names.truncate(8);
        Err(format!(
            "not allowed: subject '{subject}'{}{} matches no allow rule",
            if names.is_empty() { "" } else { ", " },
            names.join(", ")
        ))
    }
}

/// `rule` is lowercase; a `*.` rule matches exactly one extra leftmost
/// label (as RFC 6125 §6.4.3 wildcards do).
fn dns_matches(rule: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match rule.strip_prefix("*.") {
        Some(base) => name
            .strip_suffix(base)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => name == rule,
    }
}

fn uri_matches(rule: &[String], uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    let mut segments = rest.split('/');
    let authority = segments.next().unwrap_or_default();
    let mut parts = vec![
        format!("{}:", scheme.to_ascii_lowercase()),
        authority.to_ascii_lowercase(),
    ];
    parts.extend(segments.map(str::to_owned));
    parts.len() == rule.len()
        && rule
            .iter()
            .zip(&parts)
            .all(|(r, p)| (r == "*" && !p.is_empty()) || r == p)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(spec: AllowSpec) -> AllowList {
        AllowList::parse(&spec).expect("rules parse")
    }

    #[test]
    fn spiffe_wildcards_match_one_whole_segment() {
        let rules = list(AllowSpec {
            uri: vec!["spiffe://Example.org/ns/*/sa/agent".into()],
            ..AllowSpec::default()
        });
        let rule = &rules.uri[0];
        assert!(uri_matches(rule, "spiffe://example.org/ns/prod/sa/agent"));
        assert!(!uri_matches(rule, "spiffe://example.org/ns//sa/agent"));
        assert!(!uri_matches(rule, "spiffe://example.org/ns/a/b/sa/agent"));
        assert!(!uri_matches(
            rule,
            "spiffe://example.org/ns/prod/sa/agent/x"
        ));
        assert!(!uri_matches(rule, "spiffe://evil.org/ns/prod/sa/agent"));
        assert!(!uri_matches(rule, "https://example.org/ns/prod/sa/agent"));
    }

    #[test]
    fn dns_wildcards_match_one_label_only() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(dns_matches("*.example.com", "A.Example.COM."));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "aexample.com"));
        assert!(dns_matches("host.example.com", "HOST.example.com"));
        assert!(!dns_matches("host.example.com", "xhost.example.com"));
    }

    #[test]
    fn subjects_compare_as_names_not_as_text() {
        let pki = pki_fixtures::generate(&pki_fixtures::PkiOptions::default()).expect("pki");
        let leaf = pki.client.certificate_der();
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&leaf).expect("cert");
        let rendered = cert.subject().to_string();
        assert!(rendered.contains(", "), "{rendered}");
        // Other spacing, case and separators: the same name.
        let respelled = rendered.replace(", ", " ;  ").to_uppercase();
        let rules = list(AllowSpec {
            subject: vec![respelled.clone()],
            ..AllowSpec::default()
        });
        assert_eq!(rules.permits(&leaf), Ok(()), "{respelled}");
        // Another name, and a prefix of this one, do not match.
        for other in [format!("{rendered}x"), rendered.replacen(", ", "+", 1)] {
            let rules = list(AllowSpec {
                subject: vec![other.clone()],
                ..AllowSpec::default()
            });
            assert!(rules.permits(&leaf).is_err(), "{other}");
        }
        let server = pki.server.certificate_der();
        let rules = list(AllowSpec {
            subject: vec![rendered],
            ..AllowSpec::default()
        });
        assert!(rules.permits(&server).is_err());
    }

    #[test]
    fn bad_rules_are_refused_with_their_text() {
        for spec in [
            AllowSpec {
                dns: vec!["a.*.com".into()],
                ..AllowSpec::default()
            },
            AllowSpec {
                uri: vec!["spiffe://x/a*b".into()],
                ..AllowSpec::default()
            },
            AllowSpec {
                uri: vec!["no-scheme".into()],
                ..AllowSpec::default()
            },
            AllowSpec {
                spki_sha256: vec!["abcd".into()],
                ..AllowSpec::default()
            },
            AllowSpec {
                subject: vec!["CN=a, nonsense".into()],
                ..AllowSpec::default()
            },
        ] {
            let error = AllowList::parse(&spec).expect_err("refused");
            assert!(error.contains("allow-"), "{error}");
        }
        assert!(list(AllowSpec::default()).is_open());
    }
}
