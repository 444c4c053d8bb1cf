//! The rules every fetched URL meets, redirect targets included: http or
//! https, and no credentials.

use reqwest::header::{self, HeaderMap};
use reqwest::Url;

use super::FetchError;

/// Parses `url` and applies the rules every fetched URL must meet.
pub(super) fn checked_url(url: &str) -> Result<Url, FetchError> {
    let parsed = Url::parse(url).map_err(|e| FetchError::InvalidUrl {
        url: url.to_owned(),
        detail: e.to_string(),
    })?;
    check_url(&parsed)?;
    Ok(parsed)
}

fn check_url(url: &Url) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::BadScheme {
            url: url.to_string(),
            scheme: url.scheme().to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        // Cannot fail for http(s) URLs; the error is then still reported.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(FetchError::Credentials {
            url: shown.to_string(),
        });
    }
    Ok(())
}

/// The checked target of a redirect from `from`.
pub(super) fn redirect_target(from: &Url, headers: &HeaderMap) -> Result<Url, FetchError> {
    let bad = |detail: String| FetchError::BadRedirect {
        url: from.to_string(),
        detail,
    };
    let location = headers
        .get(header::LOCATION)
        .ok_or_else(|| bad("no Location header".into()))?
        .to_str()
        .map_err(|_| bad("Location is not text".into()))?;
    let target = from
        .join(location)
        .map_err(|e| bad(format!("Location '{location}': {e}")))?;
    check_url(&target)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(checked_url("http://ca.test/x.crl").is_ok());
        assert!(checked_url("https://ca.test/x.crl").is_ok());
        assert!(matches!(
            checked_url("ftp://ca.test/x.crl"),
            Err(FetchError::BadScheme { .. })
        ));
        assert!(matches!(
            checked_url("ldap://ca.test/cn=x"),
            Err(FetchError::BadScheme { .. })
        ));
        match checked_url("http://user:secret@ca.test/x.crl") {
            Err(FetchError::Credentials { url }) => assert!(!url.contains("secret")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            checked_url("not a url"),
            Err(FetchError::InvalidUrl { .. })
        ));
    }
}
