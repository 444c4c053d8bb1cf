//! The drill's figures: per scenario, and the verdict over all of them.

use serde::Serialize;

/// Teardown latency percentiles, milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Latency {
    pub(crate) fn of(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            round(samples[i])
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// One scenario's outcome (the contract's scenario object, plus `policy`,
/// `refresh`, `degraded` and `detail`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ScenarioReport {
    pub(crate) name: &'static str,
    /// Fleet drills: the node this row is about, or `fleet` (each
    /// connection's last close across the nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<String>,
    pub(crate) source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<&'static str>,
    /// How revocation data reached the server: `triggered` (a refresh right
    /// after publication), `scheduled`, or `deadline` (time alone: expiry,
    /// data past nextUpdate).
    pub(crate) refresh: &'static str,
    pub(crate) connections: usize,
    /// Connections that must go.
    pub(crate) revoked: usize,
    /// Of those, closed as seen by their client.
    pub(crate) torn_down: usize,
    /// Connections that must stay but were closed.
    pub(crate) collateral: usize,
    /// Connections that must go but are still open.
    pub(crate) survivors: usize,
    /// Connections kept with unknown revocation status (`prefer`).
    pub(crate) degraded: usize,
    /// From publication (or the deadline) to each close, as the client saw it.
    pub(crate) teardown_ms: Latency,
    /// Whether this scenario passed.
    pub(crate) passed: bool,
    /// What went wrong, or a note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// The whole drill.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) passed: bool,
    pub(crate) seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_teardown_ms: Option<f64>,
    pub(crate) scenarios: Vec<ScenarioReport>,
}

impl Report {
    pub(crate) fn new(seed: u64, max_teardown_ms: Option<f64>) -> Self {
        Self {
            passed: false,
            seed,
            max_teardown_ms,
            scenarios: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, mut scenario: ScenarioReport) {
        let slow = self
            .max_teardown_ms
            .is_some_and(|limit| scenario.teardown_ms.max > limit);
        if slow {
            let note = format!(
                "teardown took {} ms, over --max-teardown-ms {}",
                scenario.teardown_ms.max,
                self.max_teardown_ms.unwrap_or_default()
            );
            scenario.detail = Some(match scenario.detail.take() {
                Some(d) => format!("{d}; {note}"),
                None => note,
            });
        }
        scenario.passed = scenario.survivors == 0
            && scenario.collateral == 0
            && scenario.torn_down == scenario.revoked
            && !slow;
        self.scenarios.push(scenario);
    }

    pub(crate) fn finish(&mut self) {
        self.passed = !self.scenarios.is_empty() && self.scenarios.iter().all(|s| s.passed);
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"serialization\",\"detail\":\"{e}\"}}"))
    }

    pub(crate) fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let nodes = self.scenarios.iter().any(|s| s.node.is_some());
        let node = |n: Option<&str>| {
            if nodes {
                format!("{:<12} ", n.unwrap_or("-"))
            } else {
                String::new()
            }
        };
        let _ = writeln!(
            out,
            "{}{:<20} {:<6} {:<8} {:<9} {:>6} {:>7} {:>9} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8}",
            node(Some("node")),
            "scenario",
            "source",
            "policy",
            "refresh",
            "conns",
            "revoked",
            "torn_down",
            "collateral",
            "survivors",
            "degraded",
            "p50_ms",
            "p95_ms",
            "max_ms"
        );
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "{}{:<20} {:<6} {:<8} {:<9} {:>6} {:>7} {:>9} {:>10} {:>9} {:>8} {:>8.1} {:>8.1} {:>8.1}",
                node(s.node.as_deref()),
                s.name,
                s.source,
                s.policy.unwrap_or("require"),
                s.refresh,
                s.connections,
                s.revoked,
                s.torn_down,
                s.collateral,
                s.survivors,
                s.degraded,
                s.teardown_ms.p50,
                s.teardown_ms.p95,
                s.teardown_ms.max
            );
        }
        for s in self.scenarios.iter().filter(|s| s.detail.is_some()) {
            let _ = writeln!(
                out,
                "  {}{} ({}): {}",
                s.node
                    .as_deref()
                    .map(|n| format!("{n}: "))
                    .unwrap_or_default(),
                s.name,
                s.policy.unwrap_or("require"),
                s.detail.as_deref().unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "{} (seed {})",
            if self.passed { "PASSED" } else { "FAILED" },
            self.seed
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(revoked: usize, torn_down: usize, collateral: usize, max: f64) -> ScenarioReport {
        ScenarioReport {
            name: "revoke-leaf",
            node: None,
            source: "crl",
            policy: None,
            refresh: "triggered",
            connections: 10,
            revoked,
            torn_down,
            collateral,
            survivors: revoked - torn_down,
            degraded: 0,
            teardown_ms: Latency {
                max,
                ..Latency::default()
            },
            passed: false,
            detail: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).map(f64::from).collect());
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50.0, 95.0, 99.0, 100.0));
        let l = Latency::of(vec![7.04]);
        assert_eq!((l.p50, l.max), (7.0, 7.0));
        assert_eq!(Latency::of(Vec::new()).max, 0.0);
    }

    #[test]
    fn survivors_collateral_and_slowness_fail() {
        let mut r = Report::new(1, Some(100.0));
        r.push(scenario(2, 2, 0, 50.0));
        r.finish();
        assert!(r.passed);
        for bad in [
            scenario(2, 1, 0, 50.0),
            scenario(2, 2, 1, 50.0),
            scenario(2, 2, 0, 150.0),
        ] {
            let mut r = Report::new(1, Some(100.0));
            r.push(scenario(2, 2, 0, 50.0));
            r.push(bad);
            r.finish();
            assert!(!r.passed);
        }
        let mut empty = Report::new(1, None);
        empty.finish();
        assert!(!empty.passed);
    }
}
