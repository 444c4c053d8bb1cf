//! `vigil drill --proxy`: the drill's clients connect to a real `vigil
//! proxy` process (this binary) in front of a plain TCP echo backend that
//! knows nothing of TLS, so what is proven is the teardown of an unmodified
//! backend's connections: the client leg (close_notify) and the backend leg
//! (FIN) alike. The refresh, the deny and the revocation data's state go
//! through the proxy's admin API, and its `degraded` events are counted.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pki_fixtures::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use vigil_core::RevocationPolicy;

/// A running proxy and its backend.
pub(super) struct ProxyFront {
    pub(super) addr: SocketAddr,
    pub(super) admin: Admin,
    child: Child,
    /// Backend connections that reached EOF (the proxy closed them).
    pub(super) backend_closed: Arc<AtomicUsize>,
    backend: JoinSet<()>,
    /// Connections announced as `degraded` on the admin API's events.
    degraded: Arc<Mutex<HashSet<String>>>,
    watcher: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// The proxy's admin API.
#[derive(Clone)]
pub(super) struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{path}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{path}: {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// `GET path`, its JSON body.
    async fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let text = response.text().await.map_err(|e| format!("{path}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
    }

    /// `POST /v1/revocation/refresh` (returns when done).
    pub(super) async fn refresh(&self) -> Result<(), String> {
        self.post("/v1/revocation/refresh", &serde_json::json!({}))
            .await
            .map(|_| ())
    }

    /// `POST /v1/deny` by certificate digest.
    pub(super) async fn deny(&self, der: &[u8]) -> Result<(), String> {
        let sha = vigil_core::text::hex(&vigil_core::sha256(der));
        self.post(
            "/v1/deny",
            &serde_json::json!({"cert_sha256": sha, "reason": "revocation drill"}),
        )
        .await
        .map(|_| ())
    }

    /// The nextUpdate (Unix seconds) of each revocation source the proxy
    /// holds, by the engine's key (a CRL's URL, `URL#SERIAL` for OCSP).
    pub(super) async fn next_updates(&self) -> Result<HashMap<String, i64>, String> {
        let body = self.get("/v1/revocation").await?;
        let sources = body["sources"]
            .as_array()
            .ok_or_else(|| format!("/v1/revocation: no sources in {body}"))?;
        Ok(sources
            .iter()
            .filter_map(|s| {
                let url = s["url"].as_str()?;
                let key = match (s["kind"].as_str(), s["serial"].as_str()) {
                    (Some("ocsp"), Some(serial)) => format!("{url}#{serial}"),
                    _ => url.to_owned(),
                };
                let next = vigil_core::text::parse_rfc3339(s["next_update"].as_str()?)?;
                Some((key, next))
            })
            .collect())
    }

    /// Connections the proxy tracks now.
    pub(super) async fn tracked(&self) -> Result<u64, String> {
        let body = self.get("/v1/connections?limit=1").await?;
        body["total"]
            .as_u64()
            .ok_or_else(|| format!("no total in {body}"))
    }
}

impl ProxyFront {
    /// Starts the backend, then `vigil proxy` trusting the fixture's root
    /// and serving its server certificate.
    /// `skew`: its `--clock-skew`, seconds.
    pub(super) async fn start(
        pki: &Pki,
        policy: RevocationPolicy,
        skew: i64,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = |name: &str, text: &str| -> Result<String, String> {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path.display().to_string())
        };
        let root = file("root.pem", &pki.root.cert.pem)?;
        let chain = file(
            "server.chain.pem",
            &format!("{}{}", pki.server.pem, pki.intermediate.cert.pem),
        )?;
        let key = file("server.key.pem", &pki.server.key_pem)?;
        let data = dir.path().join("data").display().to_string();

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("backend: {e}"))?;
        let target = listener.local_addr().map_err(|e| e.to_string())?;
        let backend_closed = Arc::new(AtomicUsize::new(0));
        let mut backend = JoinSet::new();
        let closed = Arc::clone(&backend_closed);
        backend.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let closed = Arc::clone(&closed);
                conns.spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tcp.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    closed.fetch_add(1, Ordering::Relaxed);
                });
                while conns.try_join_next().is_some() {}
            }
        });

        let exe = std::env::current_exe().map_err(|e| format!("this program: {e}"))?;
        let mut command = Command::new(exe);
        command
            .args(["proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args([
                "--target",
                &target.to_string(),
                "--cert",
                &chain,
                "--key",
                &key,
            ])
            .args(["--anchor", &root, "--data-dir", &data])
            .args([
                "--revocation",
                match policy {
                    RevocationPolicy::Off => "off",
                    RevocationPolicy::Prefer => "prefer",
                    _ => "require",
                },
            ])
            .args(["--clock-skew", &skew.to_string()])
            .args(["--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, _) in std::env::vars() {
            if k.starts_with("VIGIL_") {
                command.env_remove(k);
            }
        }
        let mut child = command.spawn().map_err(|e| format!("vigil proxy: {e}"))?;
        let stdout = child.stdout.take().ok_or("vigil proxy: no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut addr, mut admin) = (None, None);
        while addr.is_none() || admin.is_none() {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        addr = a.trim().parse::<SocketAddr>().ok();
                    } else if let Some(u) = line.strip_prefix("admin on ") {
                        admin = Some(u.trim().to_owned());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("vigil proxy did not start".into());
                }
            }
        }
        let (Some(addr), Some(base)) = (addr, admin) else {
            return Err("vigil proxy did not start".into());
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let admin = Admin { http, base };
        let degraded = Arc::new(Mutex::new(HashSet::new()));
        let watcher = tokio::spawn(watch_degraded(admin.clone(), Arc::clone(&degraded)));
        Ok(Self {
            addr,
            admin,
            child,
            backend_closed,
            backend,
            degraded,
            watcher,
            _dir: dir,
        })
    }

    /// How many connections the proxy has announced as `degraded`.
    pub(super) fn degraded(&self) -> usize {
        self.degraded.lock().map_or(0, |set| set.len())
    }

    /// Stops the proxy (SIGTERM, then kill) and the backend.
    pub(super) fn stop(&mut self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            for _ in 0..100 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.backend.abort_all();
        self.watcher.abort();
    }
}

/// Records the connection ids of the admin API's `degraded` events.
async fn watch_degraded(admin: Admin, seen: Arc<Mutex<HashSet<String>>>) {
    let request = admin
        .http
        .get(format!("{}/v1/events", admin.base))
        .timeout(Duration::from_secs(24 * 3600));
    let Ok(response) = request.send().await else {
        return;
    };
    super::super::sidecar::read_sse(response, |event, data, _| {
        if event != "degraded" {
            return;
        }
        let id = serde_json::from_str::<serde_json::Value>(data)
            .ok()
            .and_then(|v| v["connection_id"].as_str().map(str::to_owned));
        if let (Some(id), Ok(mut set)) = (id, seen.lock()) {
            set.insert(id);
        }
    })
    .await;
}

impl Drop for ProxyFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
