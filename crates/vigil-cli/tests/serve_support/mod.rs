//! Shared by the `serve_*` tests: a real `vigil serve` process on
//! 127.0.0.1:0 over a temporary data directory, the fixture PKI and its
//! CRL/OCSP responder, an HTTP client and an SSE reader.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use pki_fixtures::responder::{start_with_fresh_pki, Responder, ResponderOptions};
use pki_fixtures::{Cert, CertSpec, Pki, PkiOptions};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The binary under test.
pub fn vigil() -> &'static str {
    env!("CARGO_BIN_EXE_vigil")
}

/// A fixture PKI served by a responder, with its root written to disk.
pub struct Fixture {
    pub responder: Responder,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start() -> Self {
        Self::start_with(ResponderOptions::default()).await
    }

    /// As [`Fixture::start`], the responder started with `options`.
    pub async fn start_with(options: ResponderOptions) -> Self {
        let (responder, pki) = start_with_fresh_pki(PkiOptions::default(), options)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.pem"), &pki.root.cert.pem).unwrap();
        Self {
            responder,
            pki,
            dir,
        }
    }

    pub fn anchor(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A new client leaf under the intermediate, known to the responder.
    pub fn leaf(&self, name: &str) -> Cert {
        let leaf = self
            .pki
            .intermediate
            .issue_leaf(&CertSpec::leaf(
                name,
                &format!("{name}.vigil.test"),
                &self.pki.options,
            ))
            .unwrap();
        self.responder.register(&leaf).unwrap();
        leaf
    }

    /// The chain of `leaf` as the API takes it.
    pub fn chain(&self, leaf: &Cert) -> Value {
        json!([leaf.pem, self.pki.intermediate.cert.pem])
    }

    /// Starts a sidecar over this fixture's anchor and data directory.
    pub fn sidecar(&self, extra: &[&str]) -> Sidecar {
        Sidecar::start(&self.data_dir(), &self.anchor(), extra, &[])
    }
}

/// A running `vigil serve`.
pub struct Sidecar {
    child: Option<Child>,
    pub base: String,
    pub log: PathBuf,
}

impl Sidecar {
    /// Starts `vigil serve --listen 127.0.0.1:0` and waits for its address.
    pub fn start(data: &Path, anchor: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--anchor".into(),
            anchor.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(&args, env, data)
    }

    /// Starts `vigil` with exactly these arguments.
    pub fn spawn(args: &[String], env: &[(&str, &str)], data: &Path) -> Self {
        let log = data.with_extension(format!("{}.log", rand_suffix()));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(vigil());
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("VIGIL_") && !env.iter().any(|(e, _)| *e == k) {
                command.env_remove(k);
            }
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let _ = tx.send(url.trim().to_owned());
                        sent = true;
                    }
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "vigil serve did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Self {
            child: Some(child),
            base,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// CPU time (user + system) the process has used so far, from
    /// /proc/PID/stat (fields 14 and 15, clock ticks of 10 ms).
    pub fn cpu_time(&self) -> Duration {
        let pid = self.pid().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// Stops with SIGTERM and waits; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vigil serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 1000
}

/// An HTTP client for the sidecar.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

/// A status and the body, parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Api {
    pub fn new(sidecar: &Sidecar, token: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: sidecar.base.clone(),
            token: token.map(str::to_owned),
        }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<String>) -> Reply {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        // Bodies are JSON; a POST says so also without one (the API refuses
        // any other media type, and a bodiless POST without one, with 415).
        if body.is_some() || method == reqwest::Method::POST {
            request = request.header("content-type", "application/json");
        }
        if let Some(b) = body {
            request = request.body(b);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            text,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body.to_string()))
            .await
    }

    pub async fn delete(&self, path: &str, body: Option<&Value>) -> Reply {
        self.send(reqwest::Method::DELETE, path, body.map(Value::to_string))
            .await
    }

    /// Registers `chain`; returns the id.
    pub async fn register(&self, chain: &Value, labels: Value, lease: Option<u32>) -> String {
        let mut body = json!({"chain": chain, "usage": "client", "labels": labels});
        if let Some(l) = lease {
            body["lease_secs"] = json!(l);
        }
        let reply = self.post("/v1/connections", &body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// Refreshes every revocation source now.
    pub async fn refresh(&self) {
        let reply = self.post("/v1/revocation/refresh", &json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    /// Waits until /readyz says ready.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.get("/readyz").await.status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "the sidecar never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One SSE event as received.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
    pub at: Instant,
    /// The event's lines exactly as framed on the wire, without the blank
    /// line that ends it.
    pub lines: Vec<String>,
}

/// Subscribes to `/v1/events`; events (and `:` comments as event
/// `comment`) arrive on the receiver.
pub async fn subscribe(
    api: &Api,
    last_event_id: Option<&str>,
) -> mpsc::UnboundedReceiver<SseEvent> {
    subscribe_to(api, "/v1/events", last_event_id).await
}

/// Subscribes to `path` (`/v1/events` with a query).
pub async fn subscribe_to(
    api: &Api,
    path: &str,
    last_event_id: Option<&str>,
) -> mpsc::UnboundedReceiver<SseEvent> {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{}{path}", api.base));
    if let Some(t) = &api.token {
        request = request.bearer_auth(t);
    }
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let mut response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        let (mut id, mut event, mut data) = (None, String::new(), String::new());
        let mut lines = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            let at = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let line = line.trim_end_matches(['\r', '\n']);
                if line.is_empty() {
                    if !event.is_empty() || !data.is_empty() {
                        let parsed = serde_json::from_str(&data).unwrap_or(Value::Null);
                        let _ = tx.send(SseEvent {
                            id: id.take(),
                            event: std::mem::take(&mut event),
                            data: parsed,
                            at,
                            lines: std::mem::take(&mut lines),
                        });
                        data.clear();
                    }
                    lines.clear();
                } else if line.starts_with(':') {
                    let _ = tx.send(SseEvent {
                        id: None,
                        event: "comment".into(),
                        data: Value::Null,
                        at,
                        lines: Vec::new(),
                    });
                } else if let Some(v) = line.strip_prefix("id:") {
                    lines.push(line.to_owned());
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("event:") {
                    lines.push(line.to_owned());
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    lines.push(line.to_owned());
                    data.push_str(v.trim_start());
                } else {
                    lines.push(line.to_owned());
                }
            }
        }
    });
    rx
}

/// The next event named `name` within `within`.
pub async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<SseEvent>,
    name: &str,
    within: Duration,
) -> Option<SseEvent> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) if e.event == name => return Some(e),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}
