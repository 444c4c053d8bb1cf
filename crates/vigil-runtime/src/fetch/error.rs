//! Why a fetch failed, with the URL and the limit involved.

use std::fmt;
use std::time::Duration;

/// Why fetching a CRL or an OCSP response failed. `url` is the URL of the
/// request that failed (after redirects, the redirect target).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL does not parse.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The parser's complaint.
        detail: String,
    },
    /// Only `http` and `https` are fetched (also as redirect targets).
    BadScheme {
        /// The URL.
        url: String,
        /// Its scheme, e.g. `ftp` or `ldap`.
        scheme: String,
    },
    /// The URL carries a user name or password; credentials are never sent.
    Credentials {
        /// The URL, with its credentials removed.
        url: String,
    },
    /// No answer within the configured time.
    Timeout {
        /// The URL.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The connection could not be established (refused, DNS, TLS).
    Connect {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The server answered with a status other than the expected one.
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body is larger than the limit. Nothing past the limit (plus at
    /// most one network chunk) was read.
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: u64,
        /// Bytes read before giving up, or the announced Content-Length.
        received: u64,
    },
    /// More redirects than allowed.
    TooManyRedirects {
        /// The URL that redirected once too often.
        url: String,
        /// The configured maximum.
        limit: u32,
    },
    /// A redirect without a usable Location.
    BadRedirect {
        /// The redirecting URL.
        url: String,
        /// What is wrong with the Location.
        detail: String,
    },
    /// The connection failed while sending or receiving.
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The body is not what was asked for (not a CRL in DER or PEM, not an
    /// OCSP response, wrong content type).
    Body {
        /// The URL.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The destination address may not be connected to (see
    /// [`FetchConfig::deny`](super::FetchConfig::deny)): an IP literal that
    /// is denied, or a host name all of whose addresses are. Nothing was
    /// sent.
    AddressDenied {
        /// The URL (after redirects, the redirect target).
        url: String,
        /// The URL's host (name or IP literal).
        host: String,
        /// The denied address (for a host name, the first one resolved).
        addr: std::net::IpAddr,
    },
    /// The HTTP client could not be built (e.g. TLS setup).
    Setup {
        /// What went wrong.
        detail: String,
    },
}

/// `$url` bound to the URL field of `$error` (by reference or mutably, as
/// `$error` is), then `$some`; `$none` for the variants without one.
macro_rules! on_url {
    ($error:expr, $url:ident => $some:expr, $none:expr) => {
        match $error {
            FetchError::InvalidUrl { url: $url, .. }
            | FetchError::BadScheme { url: $url, .. }
            | FetchError::Credentials { url: $url }
            | FetchError::Timeout { url: $url, .. }
            | FetchError::Connect { url: $url, .. }
            | FetchError::Status { url: $url, .. }
            | FetchError::TooLarge { url: $url, .. }
            | FetchError::TooManyRedirects { url: $url, .. }
            | FetchError::BadRedirect { url: $url, .. }
            | FetchError::Transport { url: $url, .. }
            | FetchError::Body { url: $url, .. }
            | FetchError::AddressDenied { url: $url, .. } => $some,
            FetchError::Setup { .. } => $none,
        }
    };
}

impl FetchError {
    /// The URL involved, if any.
    pub fn url(&self) -> Option<&str> {
        on_url!(self, url => Some(url), None)
    }

    /// The URL involved, to rewrite: an OCSP GET names its responder, not
    /// the request it carried in the URL.
    pub(super) fn url_mut(&mut self) -> Option<&mut String> {
        on_url!(self, url => Some(url), None)
    }

    /// Whether trying again soon may help: timeouts, connection failures
    /// and 5xx answers. A 4xx, an oversized or malformed body, or a refused
    /// URL will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Connect { .. } | Self::Transport { .. } => true,
            Self::Status { status, .. } => (500..600).contains(status),
            _ => false,
        }
    }

    /// A short snake_case code for logs, metrics and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::BadScheme { .. } => "bad_scheme",
            Self::Credentials { .. } => "credentials_in_url",
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Status { .. } => "http_status",
            Self::TooLarge { .. } => "too_large",
            Self::TooManyRedirects { .. } => "too_many_redirects",
            Self::BadRedirect { .. } => "bad_redirect",
            Self::Transport { .. } => "transport",
            Self::Body { .. } => "bad_body",
            Self::AddressDenied { .. } => "address_denied",
            Self::Setup { .. } => "setup",
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, detail } => write!(f, "{url}: invalid URL: {detail}"),
            Self::BadScheme { url, scheme } => {
                write!(
                    f,
                    "{url}: scheme '{scheme}' is not fetched (http and https only)"
                )
            }
            Self::Credentials { url } => {
                write!(f, "{url}: URLs with credentials are refused")
            }
            Self::Timeout { url, after } => {
                write!(f, "{url}: no answer within {} ms", after.as_millis())
            }
            Self::Connect { url, detail } => write!(f, "{url}: cannot connect: {detail}"),
            Self::Status { url, status } => write!(f, "{url}: HTTP status {status}"),
            Self::TooLarge {
                url,
                limit,
                received,
            } => write!(
                f,
                "{url}: body over the {limit}-byte limit (gave up at {received} bytes)"
            ),
            Self::TooManyRedirects { url, limit } => {
                write!(f, "{url}: more than {limit} redirects")
            }
            Self::BadRedirect { url, detail } => write!(f, "{url}: bad redirect: {detail}"),
            Self::Transport { url, detail } => write!(f, "{url}: transfer failed: {detail}"),
            Self::Body { url, detail } => write!(f, "{url}: {detail}"),
            Self::AddressDenied { url, host, addr } => write!(
                f,
                "{url}: destination {addr} of {host} is denied (see --fetch-deny/--fetch-allow)"
            ),
            Self::Setup { detail } => write!(f, "HTTP client setup failed: {detail}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// Maps a reqwest error for `url` to a [`FetchError`].
pub(super) fn from_reqwest(url: &str, e: &reqwest::Error, connect_timeout: Duration) -> FetchError {
    let mut detail = chain(e);
    // reqwest names the URL in its message; the error names it already.
    if let Some(named) = e.url() {
        detail = detail.replace(&format!(" for url ({named})"), "");
    }
    // The guarded resolver's refusal, wherever reqwest nested it.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(denied) = s.downcast_ref::<super::guard::Denied>() {
            return FetchError::AddressDenied {
                url: url.to_owned(),
                host: denied.host.clone(),
                addr: denied.addr,
            };
        }
        source = s.source();
    }
    if e.is_timeout() {
        FetchError::Timeout {
            url: url.to_owned(),
            after: connect_timeout,
        }
    } else if e.is_connect() {
        FetchError::Connect {
            url: url.to_owned(),
            detail,
        }
    } else {
        FetchError::Transport {
            url: url.to_owned(),
            detail,
        }
    }
}

/// The error and its sources, "a: b: c" (reqwest's own message alone only
/// says "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
