//! `vigil drill` end to end through the binary (issue 6): every scenario at
//! a small N with real TLS connections and the fixture responder, a
//! deliberately broken server that the drill must fail, and usage errors.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Output};

use serde_json::Value;

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env_remove("VIGIL_API_TOKEN")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_default_drill_passes_every_scenario_at_small_n() {
    let out = vigil(&[
        "drill",
        "--connections",
        "12",
        "--seed",
        "7",
        "--format",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["seed"], 7);
    let scenarios = report["scenarios"].as_array().unwrap();
    let names: Vec<(&str, Option<&str>)> = scenarios
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["policy"].as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("revoke-leaf", None),
            ("revoke-intermediate", None),
            ("expire", None),
            ("responder-down", Some("require")),
            ("responder-down", Some("prefer")),
        ]
    );
    for s in scenarios {
        assert_eq!(s["connections"], 12, "{s:#}");
        assert_eq!(s["survivors"], 0, "{s:#}");
        assert_eq!(s["collateral"], 0, "{s:#}");
        assert_eq!(s["torn_down"], s["revoked"], "{s:#}");
        assert_eq!(s["source"], "both");
        assert_eq!(s["passed"], true);
        for q in ["p50", "p95", "max"] {
            assert!(s["teardown_ms"][q].as_f64().unwrap() >= 0.0);
        }
    }
    // 10% of 12, rounded: 1 revoked leaf; the intermediate's 1 leaf; 1
    // short-lived certificate.
    for s in &scenarios[..3] {
        assert_eq!(s["revoked"], 1, "{s:#}");
        assert!(s["teardown_ms"]["max"].as_f64().unwrap() > 0.0, "{s:#}");
    }
    assert_eq!(scenarios[0]["refresh"], "triggered");
    assert_eq!(scenarios[2]["refresh"], "deadline");
    // Responder down: every connection goes under require, none under
    // prefer, where all are reported degraded.
    assert_eq!(scenarios[3]["revoked"], 12);
    assert_eq!(scenarios[4]["revoked"], 0);
    assert_eq!(scenarios[4]["degraded"], 12);
}

#[test]
fn the_drill_through_vigil_proxy_closes_client_and_backend_legs() {
    let out = vigil(&[
        "drill",
        "--proxy",
        "--connections",
        "20",
        "--seed",
        "11",
        "--format",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let scenarios = report["scenarios"].as_array().unwrap();
    let names: Vec<(&str, Option<&str>)> = scenarios
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["policy"].as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("revoke-leaf", None),
            ("revoke-intermediate", None),
            ("expire", None),
            ("responder-down", Some("require")),
            ("responder-down", Some("prefer")),
            ("deny", None),
        ]
    );
    for s in scenarios {
        // A connection counts only once its backend leg closed too.
        assert_eq!(s["torn_down"], s["revoked"], "{s:#}");
        assert_eq!(s["survivors"], 0, "{s:#}");
        assert_eq!(s["collateral"], 0, "{s:#}");
    }
    for s in scenarios.iter().filter(|s| s["name"] != "responder-down") {
        assert_eq!(s["revoked"], 2, "{s:#}");
        assert!(s["teardown_ms"]["max"].as_f64().unwrap() > 0.0, "{s:#}");
    }
    // Responder down (the data lapses at its nextUpdate): every connection
    // goes under require, both legs; none under prefer, where the proxy
    // announces each as degraded.
    assert_eq!(scenarios[3]["revoked"], 20, "{:#}", scenarios[3]);
    assert_eq!(scenarios[3]["refresh"], "deadline");
    assert!(scenarios[3]["teardown_ms"]["p50"].as_f64().unwrap() >= 0.0);
    assert_eq!(scenarios[4]["revoked"], 0);
    assert_eq!(scenarios[4]["degraded"], 20, "{:#}", scenarios[4]);
}

#[test]
fn a_server_that_never_rechecks_fails_the_drill() {
    let out = vigil(&[
        "drill",
        "--broken-server",
        "--scenario",
        "revoke-leaf",
        "--connections",
        "10",
        "--revoke-fraction",
        "0.3",
        "--source",
        "crl",
        "--wait-secs",
        "2",
        "--format",
        "json",
    ]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["passed"], false);
    let s = &report["scenarios"][0];
    assert_eq!(s["revoked"], 3);
    assert_eq!(s["survivors"], 3);
    assert_eq!(s["torn_down"], 0);
    assert!(
        s["detail"].as_str().unwrap().contains("still open"),
        "{s:#}"
    );
}

#[test]
fn exceeding_max_teardown_ms_fails_and_the_table_says_why() {
    let out = vigil(&[
        "drill",
        "--scenario",
        "revoke-leaf",
        "--connections",
        "5",
        "--source",
        "ocsp",
        "--max-teardown-ms",
        "0.001",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("revoke-leaf"), "{text}");
    assert!(text.contains("over --max-teardown-ms"), "{text}");
    assert!(text.contains("FAILED"), "{text}");
    // Progress goes to stderr, plain lines when not a terminal.
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("drill: revoke-leaf: 5 connections up"),
        "{progress}"
    );
    assert!(!progress.contains('\r'), "{progress}");
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["drill", "--connections", "0"][..],
        &["drill", "--revoke-fraction", "1.5"],
        &["drill", "--revoke-fraction", "0"],
        &["drill", "--refresh-interval", "0"],
        &["drill", "--max-teardown-ms", "-3"],
        &["drill", "--scenario", "meteor"],
        &["drill", "--source", "carrier-pigeon"],
        &["drill", "--proxy", "--source", "crl"],
        &["drill", "--proxy", "--sidecar", "http://127.0.0.1:1"],
    ] {
        let out = vigil(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

/// A child process killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_drill_against_a_running_sidecar_passes() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("drill-anchor.pem");
    // A free port for the sidecar, known before either process starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let drill = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "drill",
            "--sidecar",
            &url,
            "--anchor-out",
            anchor.to_str().unwrap(),
            "--connections",
            "20",
            "--scenario",
            "all",
            "--wait-secs",
            "10",
            "--wait-sidecar",
            "60",
            "--format",
            "json",
        ])
        // Every /v1 route needs the token: the drill sends it everywhere
        // (registrations, events, refresh).
        .env("VIGIL_API_TOKEN", "drill-token-0123")
        .env("NO_PROXY", "*")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut drill = Child(drill);
    // The drill writes the anchor the sidecar must trust, then waits for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !anchor.exists() {
        assert!(std::time::Instant::now() < deadline, "no anchor written");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut sidecar = Child(
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--anchor",
                anchor.to_str().unwrap(),
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
            ])
            .env("VIGIL_API_TOKEN", "drill-token-0123")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(sidecar.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("listening on"), "{first}");
    let out = drill.0.wait_with_output_ref();
    let report: Value = serde_json::from_slice(&out.0).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.0),
            String::from_utf8_lossy(&out.1)
        )
    });
    assert_eq!(
        out.2,
        Some(0),
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.1)
    );
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["revoke-leaf", "revoke-intermediate", "expire"]);
    for s in report["scenarios"].as_array().unwrap() {
        assert_eq!(s["survivors"], 0, "{s:#}");
        assert_eq!(s["collateral"], 0, "{s:#}");
        assert_eq!(s["torn_down"], s["revoked"], "{s:#}");
        assert_eq!(s["revoked"], 2, "{s:#}");
    }
}

trait WaitRef {
    /// Waits for the child, reading all of its stdout and stderr.
    fn wait_with_output_ref(&mut self) -> (Vec<u8>, Vec<u8>, Option<i32>);
}

impl WaitRef for std::process::Child {
    fn wait_with_output_ref(&mut self) -> (Vec<u8>, Vec<u8>, Option<i32>) {
        use std::io::Read;
        let mut stdout = self.stdout.take().unwrap();
        let mut stderr = self.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let status = self.wait().unwrap();
        (out, err.join().unwrap(), status.code())
    }
}
