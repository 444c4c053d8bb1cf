//! `mtls_echo_client`: the client of the `mtls_echo` example. Connects over
//! mutual TLS, verifying the server with a [`VigilServerVerifier`] (path to
//! `--anchor`, serverAuth, the name `--name`, revocation required), sends
//! each line of stdin and prints each line echoed back.
//!
//! ```text
//! cargo run --release -p vigil-rustls --example mtls_echo_client -- \
//!     --connect 127.0.0.1:8443 --cert client.chain.pem --key client.key.pem \
//!     --anchor root.pem [--name server.vigil.test]
//! ```
//!
//! When stdin ends and every line came back, it closes the connection and
//! exits 0. When the server closes the connection it prints
//! `connection closed by server` on stderr and exits 0 if stdin was done, 1
//! otherwise. Exit status 2: bad arguments or unusable files; 1: the
//! connection failed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vigil_core::input::{load_certificates, load_private_key};
use vigil_runtime::{Engine, EngineConfig, MemoryStore, Store, SystemClock};
use vigil_rustls::VigilServerVerifier;

const USAGE: &str = "usage: mtls_echo_client --connect ADDR --cert CLIENT_CHAIN_PEM \
--key CLIENT_KEY_PEM --anchor SERVER_ROOT_PEM [--name SERVER_NAME]";

/// The command line.
struct Args {
    connect: String,
    cert: PathBuf,
    key: PathBuf,
    anchor: PathBuf,
    name: ServerName<'static>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut connect, mut cert, mut key, mut anchor) = (None, None, None, None);
    let mut name = "server.vigil.test".to_owned();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--connect" => connect = Some(value()?),
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--anchor" => anchor = Some(PathBuf::from(value()?)),
            "--name" => name = value()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let missing = |flag: &str| format!("{flag} is required");
    let name = ServerName::try_from(name.clone()).map_err(|e| format!("--name {name}: {e}"))?;
    Ok(Some(Args {
        connect: connect.ok_or_else(|| missing("--connect"))?,
        cert: cert.ok_or_else(|| missing("--cert"))?,
        key: key.ok_or_else(|| missing("--key"))?,
        anchor: anchor.ok_or_else(|| missing("--anchor"))?,
        name,
    }))
}

fn config(args: &Args) -> Result<ClientConfig, String> {
    let chain = load_certificates(&args.cert).map_err(|e| e.to_string())?;
    let key = load_private_key(&args.key).map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::open(
        load_certificates(&args.anchor).map_err(|e| e.to_string())?,
        store,
        EngineConfig::default(),
        Arc::new(SystemClock),
    )
    .map_err(|e| format!("{}: {e}", args.anchor.display()))?;
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(VigilServerVerifier::new(engine)))
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("{} with {}: {e}", args.cert.display(), args.key.display()))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mtls_echo_client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mtls_echo_client: {e}");
            return ExitCode::from(2);
        }
    };
    // Multi-threaded, so that the verifier may fetch revocation data inside
    // the handshake.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mtls_echo_client: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(args, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mtls_echo_client: {e}");
            ExitCode::FAILURE
        }
    };
    // A read of stdin may still be blocking a runtime thread: do not wait
    // for it.
    runtime.shutdown_background();
    code
}

async fn run(args: Args, config: ClientConfig) -> Result<ExitCode, String> {
    let tcp = TcpStream::connect(&args.connect)
        .await
        .map_err(|e| format!("connect {}: {e}", args.connect))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(args.name.clone(), tcp)
        .await
        .map_err(|e| format!("handshake with {}: {e}", args.connect))?;
    let (from_server, mut to_server) = tokio::io::split(tls);
    let mut echoed = BufReader::new(from_server).lines();
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_done = false;
    // Lines sent and not echoed yet.
    let mut pending = 0usize;
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            line = input.next_line(), if !stdin_done => match line {
                Ok(Some(line)) => {
                    let sent = async {
                        to_server.write_all(line.as_bytes()).await?;
                        to_server.write_all(b"\n").await?;
                        to_server.flush().await
                    }
                    .await;
                    if sent.is_err() {
                        eprintln!("connection closed by server");
                        return Ok(ExitCode::FAILURE);
                    }
                    pending += 1;
                }
                Ok(None) => stdin_done = true,
                Err(e) => return Err(format!("stdin: {e}")),
            },
            line = echoed.next_line() => match line {
                Ok(Some(line)) => {
                    writeln!(stdout, "{line}")
                        .and_then(|()| stdout.flush())
                        .map_err(|e| format!("stdout: {e}"))?;
                    pending = pending.saturating_sub(1);
                }
                Ok(None) | Err(_) => {
                    eprintln!("connection closed by server");
                    if let Err(e) = &line {
                        // E.g. the alert of a refused certificate.
                        eprintln!("mtls_echo_client: {e}");
                    }
                    return Ok(if stdin_done {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    });
                }
            },
        }
        if stdin_done && pending == 0 {
            // Everything came back: close with close_notify.
            let _ = to_server.shutdown().await;
            return Ok(ExitCode::SUCCESS);
        }
    }
}
