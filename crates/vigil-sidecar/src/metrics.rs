//! `/metrics` in the Prometheus text exposition format (0.0.4), written by
//! hand: counters are relaxed atomics, gauges are read at scrape time.
//! Label values are bounded sets (reason codes, source kinds, the CRL and
//! OCSP responder URLs certificates name), never certificate contents.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vigil_core::{ReasonCode, Verdict};

use super::events::EVENT_NAMES;
use super::AppState;

/// Upper bounds (seconds) of the verification duration histogram.
const VERIFY_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0,
];

/// Counters the handlers update.
pub(crate) struct Metrics {
    /// [reason index][accepted, rejected].
    verifications: Vec<[AtomicU64; 2]>,
    verify_buckets: [AtomicU64; VERIFY_BUCKETS.len()],
    verify_count: AtomicU64,
    verify_sum_micros: AtomicU64,
    auth_failures: AtomicU64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            verifications: ReasonCode::all().map(|_| Default::default()).collect(),
            verify_buckets: Default::default(),
            verify_count: AtomicU64::new(0),
            verify_sum_micros: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
        }
    }

    /// Counts one verification (of `/v1/verify` or a registration), and
    /// observes its duration when given (`/v1/verify`: from parsed input to
    /// verdict).
    pub(crate) fn verified(&self, verdict: &Verdict, took: Option<Duration>) {
        if let Some(i) = ReasonCode::all().position(|c| c == verdict.reason) {
            let slot = usize::from(!verdict.is_accepted());
            if let Some(counters) = self.verifications.get(i) {
                counters[slot].fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some(took) = took else {
            return;
        };
        let secs = took.as_secs_f64();
        if let Some(i) = VERIFY_BUCKETS.iter().position(|b| secs <= *b) {
            self.verify_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.verify_count.fetch_add(1, Ordering::Relaxed);
        self.verify_sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// The exposition text.
pub(crate) fn render(app: &AppState) -> String {
    let mut out = String::with_capacity(8192);
    let m = &app.metrics;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);

    head(
        &mut out,
        "vigil_verifications_total",
        "counter",
        "Chain verifications (API verify and registrations) by verdict and reason code.",
    );
    for (code, counters) in ReasonCode::all().zip(&m.verifications) {
        for (slot, verdict) in ["accepted", "rejected"].iter().enumerate() {
            let n = get(&counters[slot]);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "vigil_verifications_total{{verdict=\"{verdict}\",reason=\"{code}\"}} {n}"
                );
            }
        }
    }
    head(
        &mut out,
        "vigil_verify_duration_seconds",
        "histogram",
        "Time of POST /v1/verify from parsed input to verdict (fetching included when it fetched).",
    );
    let buckets: Vec<(f64, u64)> = {
        let mut cumulative = 0;
        VERIFY_BUCKETS
            .iter()
            .zip(&m.verify_buckets)
            .map(|(b, n)| {
                cumulative += get(n);
                (*b, cumulative)
            })
            .collect()
    };
    histogram(
        &mut out,
        "vigil_verify_duration_seconds",
        "",
        &buckets,
        get(&m.verify_count),
        get(&m.verify_sum_micros) as f64 / 1e6,
    );

    head(
        &mut out,
        "vigil_store_write_errors_total",
        "counter",
        "Store writes that failed (what the engine learned may not survive a restart).",
    );
    let _ = writeln!(
        out,
        "vigil_store_write_errors_total {}",
        app.engine.store_errors()
    );

    head(
        &mut out,
        "vigil_sources_evicted_total",
        "counter",
        "Revocation sources forgotten because the source cap was reached (least recently used first).",
    );
    let _ = writeln!(
        out,
        "vigil_sources_evicted_total {}",
        app.engine.sources_evicted()
    );
    head(
        &mut out,
        "vigil_revocation_urls_ignored_total",
        "counter",
        "CRL/OCSP URLs left out because a certificate named more than are used.",
    );
    let _ = writeln!(
        out,
        "vigil_revocation_urls_ignored_total {}",
        app.engine.urls_ignored()
    );

    let fetches = app.engine.refresh_metrics();
    head(
        &mut out,
        "vigil_fetches_total",
        "counter",
        "Revocation data refreshes by source kind and outcome.",
    );
    for (kind, k) in [("crl", &fetches.crl), ("ocsp", &fetches.ocsp)] {
        for (outcome, n) in [
            ("updated", k.updated),
            ("not_modified", k.not_modified),
            ("failed", k.failed),
        ] {
            let _ = writeln!(
                out,
                "vigil_fetches_total{{source=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    head(
        &mut out,
        "vigil_fetch_duration_seconds",
        "histogram",
        "Time per refresh (fetch, verify, store) by source kind.",
    );
    for (kind, k) in [("crl", &fetches.crl), ("ocsp", &fetches.ocsp)] {
        histogram(
            &mut out,
            "vigil_fetch_duration_seconds",
            &format!("source=\"{kind}\","),
            &k.buckets,
            k.count,
            k.sum_seconds,
        );
    }

    // Age of the data held: CRLs one series per distribution point; OCSP
    // keys are per certificate, so one series per responder (the oldest
    // answer it gave).
    let now = super::record::now_ms() / 1000;
    let mut ages: std::collections::BTreeMap<(&'static str, String), i64> = Default::default();
    let mut failing: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for s in app.engine.sources() {
        let kind = s.kind;
        let url = s.url;
        if s.last_error.is_some() {
            *failing.entry(kind).or_default() += 1;
        }
        if let Some(age) = s.this_update.map(|t| now - t) {
            let e = ages.entry((kind, url)).or_insert(age);
            *e = (*e).max(age);
        }
    }
    head(&mut out, "vigil_revocation_data_age_seconds", "gauge", "Seconds since thisUpdate of the data held, per CRL distribution point and (oldest answer) per OCSP responder.");
    for ((kind, url), age) in &ages {
        let _ = writeln!(
            out,
            "vigil_revocation_data_age_seconds{{source=\"{kind}\",url=\"{}\"}} {age}",
            escape(url)
        );
    }
    head(
        &mut out,
        "vigil_revocation_sources_failing",
        "gauge",
        "Sources whose last refresh failed.",
    );
    for kind in ["crl", "ocsp"] {
        let n = failing.get(kind).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "vigil_revocation_sources_failing{{source=\"{kind}\"}} {n}"
        );
    }

    let c = &app.conns.counters;
    head(
        &mut out,
        "vigil_connections_tracked",
        "gauge",
        "Registered connections tracked now.",
    );
    let _ = writeln!(out, "vigil_connections_tracked {}", app.conns.len());
    head(
        &mut out,
        "vigil_chains_tracked",
        "gauge",
        "Distinct chains tracked (connections with the same chain share one).",
    );
    let _ = writeln!(out, "vigil_chains_tracked {}", app.conns.chains());
    for (name, help, n) in [
        (
            "vigil_connections_registered_total",
            "Connections registered.",
            &c.registered,
        ),
        (
            "vigil_connections_removed_total",
            "Connections removed by their caller.",
            &c.removed,
        ),
        (
            "vigil_lease_expirations_total",
            "Connections forgotten because their lease lapsed.",
            &c.lease_expired,
        ),
        (
            "vigil_connections_restored_total",
            "Persisted connections tracked again at start.",
            &c.restored,
        ),
        (
            "vigil_connections_restore_refused_total",
            "Persisted connections found untrusted at start.",
            &c.restore_refused,
        ),
        (
            "vigil_auth_failures_total",
            "Requests refused for a missing or wrong token.",
            &m.auth_failures,
        ),
    ] {
        head(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", get(n));
    }
    head(
        &mut out,
        "vigil_teardowns_total",
        "counter",
        "Teardowns announced, by reason.",
    );
    for (reason, n) in vigil_core::TeardownReason::ALL
        .map(vigil_core::TeardownReason::as_str)
        .iter()
        .zip(&c.teardowns)
    {
        let _ = writeln!(
            out,
            "vigil_teardowns_total{{reason=\"{reason}\"}} {}",
            get(n)
        );
    }
    head(
        &mut out,
        "vigil_events_total",
        "counter",
        "Events published on /v1/events, by name.",
    );
    for (name, n) in EVENT_NAMES.iter().zip(app.hub.published()) {
        let _ = writeln!(out, "vigil_events_total{{event=\"{name}\"}} {n}");
    }
    head(
        &mut out,
        "vigil_sse_subscribers",
        "gauge",
        "Subscribers connected to /v1/events.",
    );
    let _ = writeln!(out, "vigil_sse_subscribers {}", app.hub.subscribers());
    head(
        &mut out,
        "vigil_deny_rules",
        "gauge",
        "Deny rules in force.",
    );
    let active = app
        .engine
        .denials()
        .iter()
        .filter(|r| r.is_active(now))
        .count();
    let _ = writeln!(out, "vigil_deny_rules {active}");
    if let Some(cluster) = &app.cluster {
        cluster_metrics(&mut out, &cluster.status());
    }
    head(
        &mut out,
        "vigil_ready",
        "gauge",
        "1 when /readyz answers 200.",
    );
    let _ = writeln!(
        out,
        "vigil_ready {}",
        u8::from(super::readiness(app).is_ok())
    );
    if let Some(extra) = &app.extra_metrics {
        extra(&mut out);
    }
    out
}

/// Fleet mode's state and counters.
fn cluster_metrics(out: &mut String, s: &vigil_cluster::ClusterStatus) {
    head(
        out,
        "vigil_cluster_connected",
        "gauge",
        "1 when connected to NATS and caught up.",
    );
    let _ = writeln!(
        out,
        "vigil_cluster_connected {}",
        u8::from(s.state == "connected" && s.synced)
    );
    let counters: [(&str, &str, u64); 8] = [
        (
            "vigil_cluster_disconnects_total",
            "Times the connection to NATS was lost.",
            s.disconnects,
        ),
        (
            "vigil_cluster_resyncs_total",
            "Catch-ups of the deny rules from the bucket.",
            s.resyncs,
        ),
        (
            "vigil_cluster_deny_applied_total",
            "Deny records from the bus applied.",
            s.applied,
        ),
        (
            "vigil_cluster_deny_refused_total",
            "Deny records from the bus refused (forged, unsigned, malformed, over the cap).",
            s.refused,
        ),
        (
            "vigil_cluster_deny_written_total",
            "Deny records written to the bus.",
            s.written,
        ),
        (
            "vigil_cluster_deny_write_failures_total",
            "Writes to the bus that failed (retried).",
            s.write_failures,
        ),
        (
            "vigil_cluster_events_published_total",
            "Events published to the fleet.",
            s.events_published,
        ),
        (
            "vigil_cluster_events_dropped_total",
            "Events not published (bus unreachable or slow).",
            s.events_dropped,
        ),
    ];
    for (name, help, value) in counters {
        head(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: &[(f64, u64)],
    count: u64,
    sum: f64,
) {
    for (bound, n) in buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
    let labels = labels.trim_end_matches(',');
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

/// Label value escaping (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
