//! What `vigil check` prints: per source, its answer, timing and freshness;
//! then the verdict. One structure, rendered as text or JSON.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};
use vigil_core::text::{hex, rfc3339};

use serde::Serialize;
use vigil_core::{CertStatus, CertSummary, CertificateDer, RevocationPolicy, Status, Verdict};

/// The kind of a revocation source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    Crl,
    Ocsp,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Crl => "crl",
            Self::Ocsp => "ocsp",
        }
    }
}

/// What one source says about the certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum SourceStatus {
    /// Verified, current data: not revoked.
    Good,
    /// Verified data: revoked.
    Revoked,
    /// Verified data that gives no status (stale, not yet valid, OCSP
    /// `unknown`, out of scope, ...).
    Unknown,
    /// Nothing usable: the fetch failed, or the data is malformed or does
    /// not verify.
    Error,
}

impl SourceStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Revoked => "revoked",
            Self::Unknown => "unknown",
            Self::Error => "error",
        }
    }
}

/// Why a source gave no status: a fetch error code (see
/// `vigil_runtime::FetchError::code`), a data error code, or the verdict
/// reason code of the source alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(super) struct SourceError {
    pub(super) code: String,
    pub(super) detail: String,
}

impl SourceError {
    pub(super) fn new(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            detail: detail.into(),
        }
    }
}

/// How current the data of a source is at the validation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Freshness {
    Fresh,
    Stale,
    NotYetValid,
    /// No nextUpdate: current as long as the verifier's maximum age allows.
    NoNextUpdate,
}

/// What became of the nonce sent with an OCSP request (RFC 8954).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum NonceCheck {
    Echoed,
    /// Allowed (RFC 8954 §3: responders may ignore the nonce, e.g. when
    /// serving pre-signed answers), and shown.
    NotEchoed,
    Mismatch,
}

/// One consulted source, as reported.
#[derive(Clone, Debug, Serialize)]
pub(super) struct SourceReport {
    pub(super) kind: Kind,
    pub(super) url: String,
    pub(super) status: SourceStatus,
    /// For `revoked`: the CRL reason, e.g. `keyCompromise`.
    pub(super) reason: Option<String>,
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339_opt")]
    pub(super) revoked_at: Option<i64>,
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339_opt")]
    pub(super) this_update: Option<i64>,
    #[serde(serialize_with = "vigil_core::text::ser::rfc3339_opt")]
    pub(super) next_update: Option<i64>,
    pub(super) freshness: Option<Freshness>,
    pub(super) fetch_ms: u64,
    pub(super) http_method: Option<&'static str>,
    /// cRLNumber (INTEGER content octets); decimal text in JSON, as in
    /// `GET /v1/revocation`.
    #[serde(serialize_with = "vigil_core::text::ser::decimal_opt")]
    pub(super) crl_number: Option<Vec<u8>>,
    pub(super) entries: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) nonce: Option<NonceCheck>,
    pub(super) error: Option<SourceError>,
    /// Freshness in words, for the text output.
    #[serde(skip)]
    pub(super) freshness_text: Option<String>,
    #[serde(skip)]
    pub(super) note: Option<String>,
}

impl SourceReport {
    pub(super) fn new(kind: Kind, url: String, elapsed: Duration) -> Self {
        Self {
            kind,
            url,
            status: SourceStatus::Error,
            reason: None,
            revoked_at: None,
            this_update: None,
            next_update: None,
            freshness: None,
            fetch_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            http_method: None,
            crl_number: None,
            entries: None,
            nonce: None,
            error: None,
            freshness_text: None,
            note: None,
        }
    }

    pub(super) fn fail(&mut self, status: SourceStatus, error: SourceError) {
        self.status = status;
        self.error = Some(error);
    }

    /// Records thisUpdate and nextUpdate and how current they are at `at`.
    pub(super) fn set_times(&mut self, this: Option<i64>, next: Option<i64>, at: i64) {
        self.this_update = this;
        self.next_update = next;
        let (freshness, text) = match (this, next) {
            (Some(this), _) if this > at => (
                Freshness::NotYetValid,
                format!("not yet valid, issued {} ahead", span(this - at)),
            ),
            (_, None) => (Freshness::NoNextUpdate, "no next update given".to_owned()),
            (_, Some(next)) if next < at => (
                Freshness::Stale,
                format!("stale since {} ({} ago)", rfc3339(next), span(at - next)),
            ),
            (_, Some(next)) => (
                Freshness::Fresh,
                format!("fresh, next update in {}", span(next - at)),
            ),
        };
        self.freshness = Some(freshness);
        self.freshness_text = Some(text);
    }

    /// Forgets the times of data that did not verify: they mean nothing.
    pub(super) fn clear_times(&mut self) {
        self.this_update = None;
        self.next_update = None;
        self.freshness = None;
        self.freshness_text = None;
        self.note = None;
    }

    /// Takes the status of the certificate from a verdict on this source
    /// alone.
    pub(super) fn answer(&mut self, verdict: &Verdict) {
        match verdict.revocation.first() {
            Some(r) if r.status == CertStatus::Good => self.status = SourceStatus::Good,
            Some(r) if r.status == CertStatus::Revoked => {
                self.status = SourceStatus::Revoked;
                self.reason = r.reason.clone();
                self.revoked_at = r.revoked_at;
            }
            // Unknown status, or no path to the issuer at all.
            _ => {
                let status = if verdict.status == Status::Unknown {
                    SourceStatus::Unknown
                } else {
                    SourceStatus::Error
                };
                self.fail(
                    status,
                    SourceError::new(verdict.reason.as_str(), verdict.detail.clone()),
                );
            }
        }
        if self.status == SourceStatus::Good
            && matches!(
                self.freshness,
                Some(Freshness::Stale | Freshness::NotYetValid)
            )
        {
            // Within the clock-skew tolerance: still used, but say so.
            self.note = Some("used within the clock-skew tolerance".into());
        }
    }
}

/// The whole result of one `vigil check`.
pub(super) struct Report {
    pub(super) certificate: CertSummary,
    pub(super) sources: Vec<SourceReport>,
    pub(super) verdict: Verdict,
    /// How many http(s) sources the certificate names, consulted or not.
    pub(super) named: usize,
    pub(super) method: &'static str,
    pub(super) policy: RevocationPolicy,
}

#[derive(Serialize)]
struct Json<'a> {
    certificate: &'a CertSummary,
    sources: &'a [SourceReport],
    verdict: &'a Verdict,
}

impl Report {
    /// One JSON object: `{"certificate", "sources", "verdict"}`.
    pub(super) fn to_json(&self) -> String {
        let json = Json {
            certificate: &self.certificate,
            sources: &self.sources,
            verdict: &self.verdict,
        };
        serde_json::to_string(&json)
            .unwrap_or_else(|e| format!("{{\"error\":\"serialization\",\"detail\":\"{e}\"}}"))
    }

    /// The certificate, every source consulted, then the verdict.
    pub(super) fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.certificate;
        let _ = writeln!(out, "certificate: {}", c.subject);
        let _ = writeln!(out, "  issuer:   {}", c.issuer);
        let _ = writeln!(out, "  serial:   {}", hex(&c.serial));
        let _ = writeln!(out, "  sha256:   {}", hex(&c.sha256));
        let _ = writeln!(
            out,
            "  validity: {} .. {}",
            rfc3339(c.not_before),
            rfc3339(c.not_after)
        );
        if self.policy == RevocationPolicy::Off {
            let _ = writeln!(out, "sources: none consulted (--revocation off)");
        } else if self.sources.is_empty() {
            let why = if self.named == 0 {
                "the certificate names no http(s) CRL distribution point or OCSP responder"
                    .to_owned()
            } else {
                format!(
                    "the certificate names none for --method {} ({} other source(s) not consulted)",
                    self.method, self.named
                )
            };
            let _ = writeln!(out, "sources: none: {why}");
        } else {
            let _ = writeln!(
                out,
                "sources ({} consulted, method {}, policy {}):",
                self.sources.len(),
                self.method,
                self.policy
            );
            for s in &self.sources {
                render_source(&mut out, s);
            }
        }
        out.push_str(&crate::verify::render_text(&self.verdict));
        out
    }
}

fn render_source(out: &mut String, s: &SourceReport) {
    let _ = writeln!(out, "  {:<4} {}", s.kind.as_str(), s.url);
    let mut line = s.status.as_str().to_owned();
    if let Some(at) = s.revoked_at {
        let _ = write!(line, " at {}", rfc3339(at));
    }
    if let Some(reason) = &s.reason {
        let _ = write!(line, " ({reason})");
    }
    if let Some(e) = &s.error {
        let _ = write!(line, ": {}: {}", e.code, e.detail);
    }
    let _ = writeln!(out, "       {line}");
    let mut fetch = match s.http_method {
        Some(method) => format!("fetched in {} ms ({method})", s.fetch_ms),
        None => format!("fetched in {} ms", s.fetch_ms),
    };
    if let Some(number) = &s.crl_number {
        let _ = write!(fetch, "; CRL number {}", vigil_core::text::decimal(number));
    }
    if let Some(n) = s.entries {
        let _ = write!(fetch, ", {n} {}", if n == 1 { "entry" } else { "entries" });
    }
    match s.nonce {
        Some(NonceCheck::Echoed) => fetch.push_str("; nonce echoed"),
        Some(NonceCheck::NotEchoed) => fetch.push_str("; nonce not echoed"),
        Some(NonceCheck::Mismatch) => fetch.push_str("; nonce MISMATCH"),
        None => {}
    }
    let _ = writeln!(out, "       {fetch}");
    if let Some(this) = s.this_update {
        let mut times = format!("this update {}", rfc3339(this));
        if let Some(next) = s.next_update {
            let _ = write!(times, ", next update {}", rfc3339(next));
        }
        if let Some(fresh) = &s.freshness_text {
            let _ = write!(times, ": {fresh}");
        }
        if let Some(note) = &s.note {
            let _ = write!(times, " ({note})");
        }
        let _ = writeln!(out, "       {times}");
    }
}

/// The certificate as the verdict's path shows it; when no path was found
/// (wrong issuer, expired, ...), read from the certificate itself.
pub(super) fn certificate(verdict: &Verdict, cert: &CertificateDer<'_>) -> CertSummary {
    if let Some(first) = verdict.chain.first() {
        return first.clone();
    }
    // The certificate parsed when it was loaded; a summary of nothing but
    // its digest if it ever did not.
    CertSummary::from_der(cert).unwrap_or_else(|_| CertSummary {
        subject: String::new(),
        issuer: String::new(),
        serial: Vec::new(),
        sha256: vigil_core::sha256(cert),
        not_before: 0,
        not_after: 0,
    })
}

/// "6d 23h", "59m 58s", "12s": the two largest units.
pub(super) fn span(secs: i64) -> String {
    let secs = secs.max(0);
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (name, size) in units {
        let n = rest / size;
        rest %= size;
        if n > 0 || !parts.is_empty() {
            parts.push(format!("{n}{name}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        return "0s".into();
    }
    if parts.len() == 2 && parts[1].starts_with('0') {
        parts.pop();
    }
    parts.join(" ")
}

/// A duration in seconds, e.g. "2 s" or "0.5 s".
pub(super) fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

pub(super) fn unix_secs(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_show_the_two_largest_units() {
        assert_eq!(span(6 * 86_400 + 23 * 3_600 + 59), "6d 23h");
        assert_eq!(span(3_599), "59m 59s");
        assert_eq!(span(86_400), "1d");
        assert_eq!(span(7_205), "2h");
        assert_eq!(span(42), "42s");
        assert_eq!(span(0), "0s");
        assert_eq!(span(-5), "0s");
    }

    #[test]
    fn freshness_is_judged_at_the_validation_time() {
        let mut r = SourceReport::new(Kind::Crl, "http://x/c.crl".into(), Duration::ZERO);
        r.set_times(Some(100), Some(1_000), 500);
        assert_eq!(r.freshness, Some(Freshness::Fresh));
        r.set_times(Some(100), Some(1_000), 4_780);
        assert_eq!(r.freshness, Some(Freshness::Stale));
        assert_eq!(
            r.freshness_text.as_deref(),
            Some("stale since 1970-01-01T00:16:40Z (1h 3m ago)")
        );
        r.set_times(Some(600), Some(1_000), 500);
        assert_eq!(r.freshness, Some(Freshness::NotYetValid));
        r.set_times(Some(100), None, 500);
        assert_eq!(r.freshness, Some(Freshness::NoNextUpdate));
    }
}
