//! `vigil drill --fleet N`: a local fleet to drill. Starts `nats-server -js`
//! (on 127.0.0.1, JetStream on a temporary directory) and N `vigil serve
//! --cluster` nodes that trust the drill's fixture root, runs the sidecar
//! drill over all of them (see `sidecar.rs`), and stops everything.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pki_fixtures::responder::{start_with_fresh_pki, ResponderOptions};
use pki_fixtures::PkiOptions;

use super::progress::Progress;
use super::report::Report;
use super::{DrillArgs, Scenario};

/// Child processes, killed when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) async fn run(
    args: &DrillArgs,
    n: u16,
    seed: u64,
    list: &[Scenario],
    progress: &Progress,
    report: &mut Report,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let (responder, pki) = start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .map_err(|e| format!("fixture responder: {e}"))?;
    let anchor = dir.path().join("anchor.pem");
    std::fs::write(&anchor, &pki.root.cert.pem).map_err(|e| format!("anchor: {e}"))?;
    let mut children = Children(Vec::new());
    let port = free_port()?;
    let nats_dir = dir.path().join("nats");
    children.0.push(
        Command::new(nats_server()?)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&nats_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nats-server: {e}"))?,
    );
    wait_for_port(port)?;
    let cluster = format!("nats://127.0.0.1:{port}");
    progress.line(&format!(
        "fleet: nats-server -js on {cluster}; starting {n} nodes"
    ));
    let exe = std::env::current_exe().map_err(|e| format!("vigil binary: {e}"))?;
    let mut urls = Vec::new();
    for i in 1..=n {
        let (child, url) = start_node(&exe, dir.path(), &anchor, &cluster, &format!("node{i}"))?;
        children.0.push(child);
        urls.push(url);
    }
    progress.line(&format!("fleet: nodes at {}", urls.join(", ")));
    let outcome = super::sidecar::run(
        args,
        &urls,
        Some((responder, pki)),
        seed,
        list,
        progress,
        report,
    )
    .await;
    drop(children);
    outcome
}

/// `nats-server` on the PATH, or where Debian installs it.
fn nats_server() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| "--fleet needs nats-server (Debian: apt-get install nats-server)".into())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn wait_for_port(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("nats-server did not start within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Starts one node; returns it and its base URL once it listens.
fn start_node(
    exe: &Path,
    dir: &Path,
    anchor: &Path,
    cluster: &str,
    name: &str,
) -> Result<(Child, String), String> {
    let data = dir.join(name);
    let log = std::fs::File::create(dir.join(format!("{name}.log")))
        .map_err(|e| format!("{name} log: {e}"))?;
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--anchor")
        .arg(anchor)
        .args([
            "--cluster",
            cluster,
            "--node-id",
            name,
            "--log-level",
            "warn",
        ])
        .env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
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
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Ok((child, url)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("{name} did not start (see its log)"))
        }
    }
}
