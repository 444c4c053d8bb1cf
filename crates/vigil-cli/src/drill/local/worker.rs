//! The client worker process: when N connections with both ends in one
//! process would exceed the open-file limit, the clients run in
//! `vigil drill --client-worker FILE` and report over its stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::super::progress::Progress;
use super::client::{client, client_config, ClientSpec, Closed};
use super::instant_at;

/// Raises the open-file limit to what N connections need (two descriptors
/// each, both ends being in this process), as far as the system allows.
pub(crate) fn raise_fd_limit(connections: usize, progress: &Progress) {
    let want = (connections as u64) * 2 + 1024;
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) if soft < want => {
            // Raising the hard limit needs privileges; try, then fall back.
            let raised = rlimit::setrlimit(rlimit::Resource::NOFILE, want, want.max(hard))
                .or_else(|_| rlimit::setrlimit(rlimit::Resource::NOFILE, hard.min(want), hard));
            if raised.is_err()
                || hard < want
                    && rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(true, |(s, _)| s < want)
            {
                progress.line(&format!(
                    "open-file limit {soft} (hard {hard}) may be too low for {connections} connections"
                ));
            }
        }
        _ => {}
    }
}

/// Whether N connections with both ends here would exceed the open-file
/// limit (two descriptors each, plus a margin).
pub(super) fn needs_worker(n: usize) -> bool {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    (n as u64) * 2 + 512 > soft
}

/// The input of a worker process.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerInput {
    addr: SocketAddr,
    period_ms: u64,
    root: Vec<u8>,
    clients: Vec<ClientSpec>,
}

/// A worker process running the clients; killed on stop or drop.
pub(super) struct WorkerProcess {
    child: tokio::process::Child,
    _input: tempfile::NamedTempFile,
}

impl WorkerProcess {
    pub(super) fn stop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts `vigil drill --client-worker FILE`, which runs the clients and
/// reports on stdout: `up I`, `fail I MESSAGE`, `closed I UNIX_NANOS`.
pub(super) fn spawn_worker(
    specs: &[ClientSpec],
    root: &[u8],
    addr: SocketAddr,
    period: Duration,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    closed: mpsc::UnboundedSender<Closed>,
) -> Result<WorkerProcess, String> {
    use std::io::Write;
    let input = WorkerInput {
        addr,
        period_ms: period.as_millis() as u64,
        root: root.to_vec(),
        clients: specs
            .iter()
            .map(|c| ClientSpec {
                chain: c.chain.clone(),
                key: c.key.clone(),
            })
            .collect(),
    };
    let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    serde_json::to_writer(&mut file, &input).map_err(|e| e.to_string())?;
    file.flush().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(exe)
        .arg("drill")
        .arg("--client-worker")
        .arg(file.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the client worker: {e}"))?;
    let stdout = child.stdout.take().ok_or("no worker stdout")?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut parts = line.splitn(3, ' ');
            let (kind, index, rest) = (parts.next(), parts.next(), parts.next());
            let Some(index) = index.and_then(|i| i.parse::<usize>().ok()) else {
                continue;
            };
            match kind {
                Some("up") => {
                    let _ = ready.send(Ok(()));
                }
                Some("fail") => {
                    let _ = ready.send(Err(rest.unwrap_or_default().to_owned()));
                }
                Some("closed") => {
                    let nanos = rest.and_then(|n| n.parse::<u64>().ok()).unwrap_or_default();
                    let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
                    let _ = closed.send((index, instant_at(at)));
                }
                _ => {}
            }
        }
    });
    Ok(WorkerProcess {
        child,
        _input: file,
    })
}

/// The worker process: runs the clients described in `path` and reports
/// on stdout until its stdin closes (the drill ended or died).
pub(crate) fn run_worker(path: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let input: WorkerInput = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<Closed>();
        // Index order is kept by tagging each client's readiness.
        let (tagged_tx, mut tagged_rx) = mpsc::unbounded_channel::<(usize, Result<(), String>)>();
        let n = input.clients.len();
        let mut tasks = JoinSet::new();
        let limit = Arc::new(Semaphore::new(64));
        for (i, spec) in input.clients.iter().enumerate() {
            let config = client_config(spec, &input.root)?;
            let (limit, closed, tagged) = (limit.clone(), closed_tx.clone(), tagged_tx.clone());
            let (addr, period) = (input.addr, Duration::from_millis(input.period_ms));
            tasks.spawn(async move {
                let permit = limit.acquire_owned().await;
                match client(i, addr, config, period, closed).await {
                    Ok(run) => {
                        drop(permit);
                        let _ = tagged.send((i, Ok(())));
                        run.await;
                    }
                    Err(e) => {
                        let _ = tagged.send((i, Err(e)));
                    }
                }
            });
        }
        drop((ready_tx, tagged_tx));
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let print = {
            let out = out.clone();
            move |line: String| {
                use std::io::Write;
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        };
        let print2 = print.clone();
        tokio::spawn(async move {
            while let Some((i, at)) = closed_rx.recv().await {
                let since = SystemTime::now()
                    .checked_sub(at.elapsed())
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                print2(format!("closed {i} {since}"));
            }
        });
        for _ in 0..n {
            match tagged_rx.recv().await {
                Some((i, Ok(()))) => print(format!("up {i}")),
                Some((i, Err(e))) => print(format!("fail {i} {}", e.replace('\n', " "))),
                None => break,
            }
        }
        let _ = ready_rx.try_recv();
        // Until the drill closes our stdin.
        let mut stdin = tokio::io::stdin();
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdin, &mut sink).await;
        tasks.abort_all();
        Ok::<(), String>(())
    })
}
