//! The PROXY protocol version 2 header (haproxy's proxy-protocol.txt, §2.2)
//! sent to the backend before any byte of the client's, so the backend
//! learns who is connected: the addresses, and in TLVs the TLS facts
//! (`PP2_TYPE_SSL` with the version and the leaf's CN) plus Vigil's own,
//! in the range kept for custom types (0xE0-0xEF):
//!
//! | type | value |
//! |---|---|
//! | `0x05` (`PP2_TYPE_UNIQUE_ID`) | the connection's id in `/v1/connections` |
//! | `0xE0` | SHA-256 of the client's leaf certificate (32 octets) |
//! | `0xE1` | the leaf's subject, UTF-8 (as `vigil verify` prints it) |

use std::net::SocketAddr;

/// The 12 signature octets of a v2 header.
pub(crate) const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Custom TLV: SHA-256 of the client's leaf certificate.
pub(crate) const TLV_CERT_SHA256: u8 = 0xE0;
/// Custom TLV: the leaf's subject.
pub(crate) const TLV_SUBJECT: u8 = 0xE1;
const TLV_UNIQUE_ID: u8 = 0x05;
const TLV_SSL: u8 = 0x20;
const SUBTYPE_SSL_VERSION: u8 = 0x21;
const SUBTYPE_SSL_CN: u8 = 0x22;
/// PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS.
const CLIENT_FLAGS: u8 = 0x01 | 0x02 | 0x04;

/// What the header says of the client.
pub(crate) struct Facts<'a> {
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
    pub(crate) connection_id: &'a str,
    pub(crate) cert_sha256: [u8; 32],
    pub(crate) subject: &'a str,
    pub(crate) common_name: Option<&'a str>,
    pub(crate) tls_version: &'a str,
}

/// The header: `PROXY` command over TCP, IPv4 or IPv6 by the source's
/// family (a mixed pair is sent as IPv6, the IPv4 side mapped).
pub(crate) fn header(facts: &Facts<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    let family = match (facts.source, facts.destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
            body.extend_from_slice(&s.port().to_be_bytes());
            body.extend_from_slice(&d.port().to_be_bytes());
            0x11
        }
        (s, d) => {
            body.extend_from_slice(&v6(s.ip()).octets());
            body.extend_from_slice(&v6(d.ip()).octets());
            body.extend_from_slice(&s.port().to_be_bytes());
            body.extend_from_slice(&d.port().to_be_bytes());
            0x21
        }
    };
    tlv(
        &mut body,
        TLV_UNIQUE_ID,
        clip(facts.connection_id.as_bytes(), 128),
    );
    let mut ssl = vec![CLIENT_FLAGS, 0, 0, 0, 0]; // client, verify = 0 (verified)
    tlv(&mut ssl, SUBTYPE_SSL_VERSION, facts.tls_version.as_bytes());
    if let Some(cn) = facts.common_name {
        tlv(&mut ssl, SUBTYPE_SSL_CN, clip(cn.as_bytes(), 1024));
    }
    tlv(&mut body, TLV_SSL, &ssl);
    tlv(&mut body, TLV_CERT_SHA256, &facts.cert_sha256);
    tlv(&mut body, TLV_SUBJECT, clip(facts.subject.as_bytes(), 4096));
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&SIGNATURE);
    out.push(0x21); // version 2, PROXY
    out.push(family);
    let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn v6(ip: std::net::IpAddr) -> std::net::Ipv6Addr {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        std::net::IpAddr::V6(v6) => v6,
    }
}

fn clip(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

fn tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&value[..usize::from(len)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_header_has_the_layout_of_section_2_2() {
        let facts = Facts {
            source: "10.1.2.3:4000".parse().expect("addr"),
            destination: "127.0.0.1:443".parse().expect("addr"),
            connection_id: "abc",
            cert_sha256: [7; 32],
            subject: "CN=agent",
            common_name: Some("agent"),
            tls_version: "TLSv1.3",
        };
        let h = header(&facts);
        assert_eq!(&h[..12], &SIGNATURE);
        assert_eq!(h[12], 0x21);
        assert_eq!(h[13], 0x11);
        let len = usize::from(u16::from_be_bytes([h[14], h[15]]));
        assert_eq!(h.len(), 16 + len);
        assert_eq!(&h[16..20], &[10, 1, 2, 3]);
        assert_eq!(&h[20..24], &[127, 0, 0, 1]);
        assert_eq!(u16::from_be_bytes([h[24], h[25]]), 4000);
        assert_eq!(u16::from_be_bytes([h[26], h[27]]), 443);
        // TLVs follow: walk them.
        let mut rest = &h[28..];
        let mut seen = Vec::new();
        while !rest.is_empty() {
            let kind = rest[0];
            let n = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            seen.push((kind, rest[3..3 + n].to_vec()));
            rest = &rest[3 + n..];
        }
        let kinds: Vec<u8> = seen.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, vec![0x05, 0x20, 0xE0, 0xE1]);
        assert_eq!(seen[0].1, b"abc");
        assert_eq!(seen[2].1, vec![7; 32]);
        assert_eq!(seen[3].1, b"CN=agent");
        assert_eq!(seen[1].1[0], CLIENT_FLAGS);
    }

    #[test]
    fn a_mixed_family_pair_is_sent_as_ipv6() {
        let facts = Facts {
            source: "[::1]:5".parse().expect("addr"),
            destination: "127.0.0.1:6".parse().expect("addr"),
            connection_id: "",
            cert_sha256: [0; 32],
            subject: "",
            common_name: None,
            tls_version: "TLSv1.2",
        };
        let h = header(&facts);
        assert_eq!(h[13], 0x21);
        assert_eq!(
            &h[32..48],
            &std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets()
        );
    }
}
