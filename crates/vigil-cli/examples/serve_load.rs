//! Load benchmark driver for `vigil serve` (run by `scripts/serve-load.sh`;
//! not part of `cargo test`). Everything runs on 127.0.0.1 and is bounded in
//! time and count:
//!
//! 1. `POST /v1/verify` of a cached 3-certificate chain with `wrk` (64
//!    connections, bounded run) next to `POST /bench/echo`, a trivial
//!    handler behind the same stack, in the same run; then cold
//!    verification (more distinct chains than the verdict cache holds),
//!    next to the two-core limit of the engine's own cold verification and
//!    of the raw ECDSA signature checks it needs.
//! 2. Teardown delivery: N registered connections, K of them revoked at the
//!    fixture responder; from the refresh that sees the revocation to each
//!    `teardown` event reaching an SSE subscriber.
//! 3. Resident memory of the sidecar with M registered connections.
//!
//! Usage: `serve_load --vigil target/release/vigil [--seconds 10]
//! [--connections 10000] [--revoked 1000] [--memory-connections 100000]
//! [--cold-chains 20000]`.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pki_fixtures::responder::{start_with_fresh_pki, ResponderOptions};
use pki_fixtures::{Cert, CertSpec, Pki, PkiOptions, Reason};
use serde_json::{json, Value};

struct Opts {
    vigil: PathBuf,
    seconds: u64,
    connections: usize,
    revoked: usize,
    memory_connections: usize,
    cold_chains: usize,
    /// Only the memory figure with a distinct certificate per connection.
    memory_only: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        vigil: PathBuf::from("target/release/vigil"),
        seconds: 10,
        connections: 10_000,
        revoked: 1_000,
        memory_connections: 100_000,
        cold_chains: 20_000,
        memory_only: false,
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--memory-only") {
        args.remove(at);
        o.memory_only = true;
    }
    let mut i = 0;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--vigil" => o.vigil = PathBuf::from(v),
            "--seconds" => o.seconds = v.parse().unwrap(),
            "--connections" => o.connections = v.parse().unwrap(),
            "--revoked" => o.revoked = v.parse().unwrap(),
            "--memory-connections" => o.memory_connections = v.parse().unwrap(),
            "--cold-chains" => o.cold_chains = v.parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    o
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = opts();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (responder, pki) = start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default())
        .await
        .unwrap();
    std::fs::write(dir.join("root.pem"), &pki.root.cert.pem).unwrap();
    let sidecar = start_sidecar(&o.vigil, dir);
    let base = sidecar.1.clone();
    let http = reqwest::Client::new();
    println!("# vigil serve load benchmark ({})", rfc3339_now());
    println!("sidecar {base}, pid {}", sidecar.0.id());
    if o.memory_only {
        memory_distinct(&o, &http, &pki, dir, sidecar).await;
        responder.shutdown().await;
        return;
    }

    // 1. Throughput, hot then cold.
    let chain3 = json!({"chain": [pki.client.pem, pki.intermediate.cert.pem, pki.root.cert.pem],
                        "usage": "client"});
    let warm = post(&http, &format!("{base}/v1/verify"), &chain3).await;
    assert_eq!(warm.1["verdict"], "accepted", "{}", warm.1);
    std::fs::write(dir.join("body.json"), chain3.to_string()).unwrap();
    let hot_lua = dir.join("hot.lua");
    std::fs::write(
        &hot_lua,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             local f = io.open(\"{}\", \"r\")\nwrk.body = f:read(\"*a\")\nf:close()\n",
            dir.join("body.json").display()
        ),
    )
    .unwrap();
    println!(
        "\n## POST /v1/verify, cached 3-certificate chain ({} bytes of JSON), wrk -t2 -c64 -d{}s",
        chain3.to_string().len(),
        o.seconds
    );
    let pid = sidecar.0.id();
    let echo = wrk(&format!("{base}/bench/echo"), &hot_lua, o.seconds, pid);
    let hot = wrk(&format!("{base}/v1/verify"), &hot_lua, o.seconds, pid);
    println!(
        "| handler | requests/s | p50 | p99 | sidecar CPU per request |\n|---|---|---|---|---|"
    );
    println!(
        "| trivial (/bench/echo, same body) | {:.0} | {} | {} | {:.1} µs |",
        echo.rps, echo.p50, echo.p99, echo.cpu_us
    );
    println!(
        "| /v1/verify (cached) | {:.0} | {} | {} | {:.1} µs |",
        hot.rps, hot.p50, hot.p99, hot.cpu_us
    );
    println!("ratio verify/trivial: {:.2}", hot.rps / echo.rps);

    let cold_n = o.cold_chains;
    println!(
        "\n## POST /v1/verify, cold: {cold_n} distinct chains rotated (the verdict cache holds at most 8192)"
    );
    let leaves = issue_leaves(&pki, "cold", cold_n);
    let bodies: Vec<String> = leaves
        .iter()
        .map(|l| {
            json!({"chain": [l.pem, pki.intermediate.cert.pem, pki.root.cert.pem], "usage": "client"})
                .to_string()
        })
        .collect();
    std::fs::write(dir.join("cold.txt"), bodies.join("\n")).unwrap();
    let cold_lua = dir.join("cold.lua");
    std::fs::write(
        &cold_lua,
        format!(
            "local bodies = {{}}\nfor line in io.lines(\"{}\") do bodies[#bodies + 1] = line end\n\
             local n = #bodies\nlocal counter = 0\nlocal threads = {{}}\n\
             function setup(thread) thread:set(\"tid\", counter) counter = counter + 1 end\n\
             function init(args) i = tid * math.floor(n / 2) end\n\
             function request() i = i % n + 1\n  return wrk.format(\"POST\", nil, \
             {{[\"Content-Type\"] = \"application/json\"}}, bodies[i]) end\n",
            dir.join("cold.txt").display()
        ),
    )
    .unwrap();
    let cold = wrk(
        &format!("{base}/v1/verify"),
        &cold_lua,
        o.seconds,
        sidecar.0.id(),
    );
    let (engine_us, sig_us) = cold_costs(&pki, &leaves[..2000.min(leaves.len())]);
    println!("| measure | value |\n|---|---|");
    println!(
        "| /v1/verify cold, requests/s | {:.0} (p50 {}, p99 {}) |",
        cold.rps, cold.p50, cold.p99
    );
    println!("| engine cold verify, one core (in-process, no HTTP) | {engine_us:.1} µs -> two-core limit {:.0}/s |", 2e6 / engine_us);
    println!("| raw ECDSA P-256 verify (ring), one core | {sig_us:.1} µs; 2 per chain -> two-core limit {:.0}/s |", 2e6 / (2.0 * sig_us));
    let metrics = get_text(&http, &format!("{base}/metrics")).await;
    let ocsp_fetches = metrics
        .lines()
        .find(|l| l.starts_with("vigil_fetch_duration_seconds_count{source=\"ocsp\"}"))
        .unwrap_or_default()
        .to_owned();
    println!("(fetches during the cold run: {ocsp_fetches})");

    // 2. Teardown delivery.
    let n = o.connections;
    let k = o.revoked.min(n);
    println!("\n## Teardown delivery: {n} registered connections, {k} revoked");
    let leaves = issue_leaves(&pki, "conn", n);
    let started = Instant::now();
    let ids = register_all(&http, &base, &pki, &leaves).await;
    let took = started.elapsed();
    println!(
        "registered {n} in {:.2} s ({:.0}/s, each durable)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    let by_id: HashMap<String, usize> = ids
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let mut events = subscribe(&base).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let doomed: Vec<&Cert> = leaves.iter().take(k).collect();
    responder
        .revoke_many(&doomed, Reason::KeyCompromise)
        .unwrap();
    let crl_url = responder.crl_url("intermediate");
    let t0 = Instant::now();
    let refresh = post(
        &http,
        &format!("{base}/v1/revocation/refresh"),
        &json!({"url": crl_url}),
    )
    .await;
    let refresh_took = t0.elapsed();
    assert_eq!(refresh.0, 200, "{}", refresh.1);
    let mut latencies = Vec::with_capacity(k);
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < k {
        let Ok(Some((name, data, at))) = tokio::time::timeout_at(deadline, events.recv()).await
        else {
            break;
        };
        if name != "teardown" {
            continue;
        }
        let id = data["connection_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(i) = by_id.get(&id) {
            assert!(*i < k, "collateral teardown of connection {i}");
            if seen.insert(id) {
                latencies.push(at.duration_since(t0));
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!("| measure | value |\n|---|---|");
    println!(
        "| teardown events received | {} of {k} (no collateral) |",
        latencies.len()
    );
    println!(
        "| refresh call (fetch, verify, index, re-check) | {:.1} ms |",
        ms(refresh_took)
    );
    println!(
        "| refresh start -> event at subscriber, p50 | {:.1} ms |",
        ms(pct(0.50))
    );
    println!("| p99 | {:.1} ms |", ms(pct(0.99)));
    println!("| max | {:.1} ms |", ms(pct(1.0)));

    // 3. Memory: (a) connections sharing the 9000 remaining certificates
    // (a client opens many connections); (b) every connection its own
    // certificate, in a fresh sidecar.
    let target = o.memory_connections;
    let active = n - k;
    println!("\n## Resident memory with {target} registered connections");
    println!("| case | registering | RSS before | RSS after (VmRSS) | peak (VmHWM) | store on disk |\n|---|---|---|---|---|---|");
    let survivors: Vec<Cert> = leaves[k..].to_vec();
    let more = target.saturating_sub(active);
    let shared: Vec<Cert> = (0..more)
        .map(|i| survivors[i % survivors.len()].clone())
        .collect();
    let before = rss(sidecar_pid(&sidecar.0));
    let started = Instant::now();
    register_all(&http, &base, &pki, &shared).await;
    let took = started.elapsed();
    let total = connection_total(&http, &base).await;
    let after = rss(sidecar_pid(&sidecar.0));
    println!(
        "| {total} connections over {} certificates | {more} in {:.1} s ({:.0}/s) | {:.0} MB ({active} conns) | {:.0} MB | {:.0} MB | {:.0} MB |",
        survivors.len(), took.as_secs_f64(), more as f64 / took.as_secs_f64(), before.0, after.0, after.1, du(&dir.join("data"))
    );

    memory_distinct(&o, &http, &pki, dir, sidecar).await;
    responder.shutdown().await;
}

/// Resident memory of a fresh sidecar with `--memory-connections`
/// registrations, each with its own certificate. Stops `previous` first.
async fn memory_distinct(
    o: &Opts,
    http: &reqwest::Client,
    pki: &Pki,
    dir: &Path,
    previous: (Child, String),
) {
    stop_sidecar(previous);
    let target = o.memory_connections;
    let fresh = dir.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("root.pem"), &pki.root.cert.pem).unwrap();
    let sidecar = start_sidecar(&o.vigil, &fresh);
    let base = sidecar.1.clone();
    let distinct = issue_leaves(pki, "mem", target);
    let pid = sidecar_pid(&sidecar.0);
    let before = rss(pid);
    let started = Instant::now();
    register_all(http, &base, pki, &distinct).await;
    let took = started.elapsed();
    let total = connection_total(http, &base).await;
    let after = rss(pid);
    if o.memory_only {
        println!("| case | registering | RSS before | RSS after (VmRSS) | peak (VmHWM) | store on disk |\n|---|---|---|---|---|---|");
    }
    println!(
        "| {total} connections, each its own certificate (fresh sidecar) | {target} in {:.1} s ({:.0}/s) | {:.0} MB (empty) | {:.0} MB | {:.0} MB | {:.0} MB |",
        took.as_secs_f64(), target as f64 / took.as_secs_f64(), before.0, after.0, after.1, du(&fresh.join("data"))
    );
    stop_sidecar(sidecar);
}

/// The sidecar's own pid: the child, or (under `VIGIL_LOAD_WRAP`, e.g. a
/// profiler) the child's newest `vigil` descendant.
fn sidecar_pid(child: &Child) -> u32 {
    if std::env::var_os("VIGIL_LOAD_WRAP").is_none() {
        return child.id();
    }
    let out = Command::new("pgrep")
        .args(["-n", "-f", "release/vigil serve"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(child.id())
}

fn stop_sidecar(mut sidecar: (Child, String)) {
    let pid = sidecar_pid(&sidecar.0).to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = sidecar.0.wait();
}

fn start_sidecar(vigil: &Path, dir: &Path) -> (Child, String) {
    let wrap: Vec<String> = std::env::var("VIGIL_LOAD_WRAP")
        .map(|w| w.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut command = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(vigil);
            c
        }
        None => Command::new(vigil),
    };
    let mut child = command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--bench-echo",
            "--log-level",
            "warn",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .arg("--anchor")
        .arg(dir.join("root.pem"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("sidecar.log")).map_or(Stdio::null(), Stdio::from))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(base) = line.trim().strip_prefix("listening on ") {
            break base.to_owned();
        }
    };
    (child, base)
}

struct WrkResult {
    rps: f64,
    p50: String,
    p99: String,
    /// CPU time (user + system) the sidecar spent per request.
    cpu_us: f64,
}

/// CPU time (user + system, clock ticks) process `pid` has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn wrk(url: &str, script: &Path, seconds: u64, pid: u32) -> WrkResult {
    let before = cpu_ticks(pid);
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let find = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_owned()
    };
    let non2xx = text.lines().find(|l| l.contains("Non-2xx"));
    assert!(non2xx.is_none(), "{url}: {text}");
    let ticks = cpu_ticks(pid).saturating_sub(before);
    let requests: f64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    WrkResult {
        rps: find("Requests/sec:").parse().unwrap_or(0.0),
        p50: find("50%"),
        p99: find("99%"),
        // Linux reports clock ticks of 1/100 s (USER_HZ).
        cpu_us: ticks as f64 * 10_000.0 / requests.max(1.0),
    }
}

/// Per-chain cost (µs) of the engine's cold verification and of one raw
/// ECDSA P-256 signature check, each on one core.
fn cold_costs(pki: &Pki, leaves: &[Cert]) -> (f64, f64) {
    use vigil_core::{CertificateDer, TrustStore, Usage, Verifier, VerifyOptions};
    let mut trust = TrustStore::new();
    trust
        .add(CertificateDer::from(pki.root.cert.der.clone()))
        .unwrap();
    let mut verifier = Verifier::new(trust);
    verifier.add_crl(&pki.intermediate_crl.der).ok();
    verifier.add_crl(&pki.root_crl.der).ok();
    let options = VerifyOptions::new(Usage::Client);
    let chains: Vec<Vec<CertificateDer<'static>>> = leaves
        .iter()
        .map(|l| {
            vec![
                CertificateDer::from(l.der.clone()),
                CertificateDer::from(pki.intermediate.cert.der.clone()),
                CertificateDer::from(pki.root.cert.der.clone()),
            ]
        })
        .collect();
    let now = SystemTime::now();
    let t = Instant::now();
    for c in &chains {
        let v = verifier.verify_uncached(c, &options, now);
        assert!(v.is_accepted(), "{}", v.detail);
    }
    let engine_us = t.elapsed().as_secs_f64() * 1e6 / chains.len() as f64;

    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, issuer) = X509Certificate::from_der(&pki.intermediate.cert.der).unwrap();
    let key = issuer.public_key().subject_public_key.data.to_vec();
    let parsed: Vec<(Vec<u8>, Vec<u8>)> = leaves
        .iter()
        .map(|l| {
            let (_, c) = X509Certificate::from_der(&l.der).unwrap();
            (
                c.tbs_certificate.as_ref().to_vec(),
                c.signature_value.data.to_vec(),
            )
        })
        .collect();
    let public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &key);
    let t = Instant::now();
    for (tbs, sig) in &parsed {
        public.verify(tbs, sig).unwrap();
    }
    let sig_us = t.elapsed().as_secs_f64() * 1e6 / parsed.len() as f64;
    (engine_us, sig_us)
}

fn issue_leaves(pki: &Pki, tag: &str, n: usize) -> Vec<Cert> {
    let started = Instant::now();
    let threads = 2;
    let mut out: Vec<Cert> = Vec::with_capacity(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let name = format!("{tag}-{i}");
                            pki.intermediate
                                .issue_leaf(&CertSpec::leaf(
                                    &name,
                                    &format!("{name}.load.test"),
                                    &pki.options,
                                ))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().unwrap());
        }
    });
    eprintln!(
        "(issued {n} leaves in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    out
}

async fn register_all(
    http: &reqwest::Client,
    base: &str,
    pki: &Pki,
    leaves: &[Cert],
) -> Vec<String> {
    let workers = 64;
    let intermediate = Arc::new(pki.intermediate.cert.pem.clone());
    let mut jobs = tokio::task::JoinSet::new();
    for w in 0..workers {
        let bodies: Vec<(usize, String)> = leaves
            .iter()
            .enumerate()
            .skip(w)
            .step_by(workers)
            .map(|(i, l)| {
                (
                    i,
                    json!({"chain": [l.pem, *intermediate], "usage": "client"}).to_string(),
                )
            })
            .collect();
        let http = http.clone();
        let url = format!("{base}/v1/connections");
        jobs.spawn(async move {
            let mut ids = Vec::new();
            for (i, body) in bodies {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
                ids.push((i, v["id"].as_str().unwrap().to_owned()));
            }
            ids
        });
    }
    let mut all = Vec::with_capacity(leaves.len());
    while let Some(done) = jobs.join_next().await {
        all.extend(done.unwrap());
    }
    all.sort();
    all.into_iter().map(|(_, id)| id).collect()
}

async fn connection_total(http: &reqwest::Client, base: &str) -> Value {
    let list: Value =
        serde_json::from_str(&get_text(http, &format!("{base}/v1/connections?limit=1")).await)
            .unwrap();
    list["total"].clone()
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

type Received = (String, Value, Instant);

async fn subscribe(base: &str) -> tokio::sync::mpsc::UnboundedReceiver<Received> {
    let mut response = reqwest::Client::new()
        .get(format!("{base}/v1/events"))
        .send()
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        let (mut event, mut data) = (String::new(), String::new());
        while let Ok(Some(chunk)) = response.chunk().await {
            let at = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let line = line.trim_end();
                if line.is_empty() {
                    if !event.is_empty() {
                        let v = serde_json::from_str(&data).unwrap_or(Value::Null);
                        let _ = tx.send((std::mem::take(&mut event), v, at));
                    }
                    data.clear();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
        }
    });
    rx
}

/// (VmRSS, VmHWM) in MB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn du(path: &Path) -> f64 {
    fn walk(p: &Path) -> u64 {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(path) as f64 / 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    vigil_core::text::rfc3339(secs)
}
