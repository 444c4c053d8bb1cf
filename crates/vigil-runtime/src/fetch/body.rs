//! What a fetched body must look like: CRLs in DER or PEM, OCSP responses
//! in DER with a sensible content type; and the OCSP GET encoding.

use base64::Engine as _;
use bytes::Bytes;

use super::FetchError;

/// A CRL body as DER. DER is passed through without a copy (a CRL can be
/// tens of megabytes); PEM (RFC 7468 `X509 CRL`) is decoded. Anything else,
/// such as an HTML error page served with status 200, is refused.
pub(super) fn crl_der(url: &str, body: Bytes) -> Result<Bytes, FetchError> {
    if is_single_der_sequence(&body) {
        return Ok(body);
    }
    let mut crls = vigil_core::input::parse_crls(&body, url).map_err(|e| FetchError::Body {
        url: url.to_owned(),
        detail: format!("not a CRL: {e}"),
    })?;
    match crls.len() {
        1 => Ok(Bytes::from(crls.remove(0))),
        n => Err(FetchError::Body {
            url: url.to_owned(),
            detail: format!("expected one CRL, found {n}"),
        }),
    }
}

/// An OCSP response body: the content type must be the one RFC 6960
/// Appendix A.2 names (`application/ocsp-response`); `application/
/// octet-stream` and a missing type are tolerated since the response is
/// verified anyway, but anything else (an HTML page, JSON) is refused.
pub(super) fn ocsp_der(
    url: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Bytes, FetchError> {
    if let Some(ct) = content_type {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media != "application/ocsp-response" && media != "application/octet-stream" {
            return Err(FetchError::Body {
                url: url.to_owned(),
                detail: format!("content type '{ct}' is not application/ocsp-response"),
            });
        }
    }
    if !is_single_der_sequence(&body) {
        return Err(FetchError::Body {
            url: url.to_owned(),
            detail: "not a DER OCSPResponse".into(),
        });
    }
    Ok(body)
}

/// RFC 6960 Appendix A.1 / RFC 5019 §5: the GET form puts the base64 of the
/// DER request, URL-encoded, after the responder URL. `None` when the
/// request must be POSTed: the encoded form is 255 bytes or longer
/// (RFC 5019 §5), or the responder URL has a query or fragment that a
/// path suffix cannot follow.
pub(super) fn ocsp_get_url(responder: &reqwest::Url, request_der: &[u8]) -> Option<String> {
    if responder.query().is_some() || responder.fragment().is_some() {
        return None;
    }
    let encoded = url_encode_base64(&base64::engine::general_purpose::STANDARD.encode(request_der));
    if encoded.len() >= 255 {
        return None;
    }
    let base = responder.as_str();
    let sep = if base.ends_with('/') { "" } else { "/" };
    Some(format!("{base}{sep}{encoded}"))
}

/// Percent-encodes the three base64 characters that are not safe in a
/// URL path segment.
fn url_encode_base64(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 4);
    for c in b64.chars() {
        match c {
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `bytes` is exactly one DER SEQUENCE (tag and definite length
/// only; the contents are the parser's business).
fn is_single_der_sequence(bytes: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = bytes else {
        return false;
    };
    let (len, rest) = if *first < 0x80 {
        (usize::from(*first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return false;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    rest.len() == len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_sequence_check() {
        assert!(is_single_der_sequence(&[0x30, 0x00]));
        assert!(is_single_der_sequence(&[0x30, 0x02, 0x05, 0x00]));
        assert!(is_single_der_sequence(&[0x30, 0x81, 0x01, 0x00]));
        assert!(!is_single_der_sequence(&[0x30, 0x03, 0x05, 0x00]));
        assert!(!is_single_der_sequence(&[0x31, 0x00]));
        assert!(!is_single_der_sequence(&[0x30, 0x80, 0x00, 0x00]));
        assert!(!is_single_der_sequence(b"<html>"));
        assert!(!is_single_der_sequence(&[]));
    }

    #[test]
    fn ocsp_get_url_encodes_base64_specials() {
        let url = reqwest::Url::parse("http://ocsp.test/ocsp").expect("url");
        // 0xfb 0xff -> "+/8=" in standard base64.
        let get = ocsp_get_url(&url, &[0xfb, 0xff]).expect("small request uses GET");
        assert_eq!(get, "http://ocsp.test/ocsp/%2B%2F8%3D");
        let root = reqwest::Url::parse("http://ocsp.test").expect("url");
        assert_eq!(
            ocsp_get_url(&root, &[0xfb, 0xff]).as_deref(),
            Some("http://ocsp.test/%2B%2F8%3D")
        );
        let with_query = reqwest::Url::parse("http://ocsp.test/?x=1").expect("url");
        assert_eq!(ocsp_get_url(&with_query, &[1]), None);
        assert_eq!(ocsp_get_url(&url, &[0u8; 300]), None);
    }

    #[test]
    fn ocsp_content_types() {
        let der = Bytes::from_static(&[0x30, 0x00]);
        for ok in [
            Some("application/ocsp-response"),
            Some("Application/OCSP-Response; charset=binary"),
            Some("application/octet-stream"),
            None,
        ] {
            assert!(ocsp_der("u", ok, der.clone()).is_ok(), "{ok:?}");
        }
        for bad in ["text/html", "application/json"] {
            assert!(ocsp_der("u", Some(bad), der.clone()).is_err(), "{bad}");
        }
        assert!(ocsp_der("u", None, Bytes::from_static(b"<html>")).is_err());
    }
}
