//! `pki-fixtures`: write Vigil's standard test PKI to a directory.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pki_fixtures::{KeyAlg, PkiOptions};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Generate Vigil's test PKI (certificates, keys, CRLs). TEST MATERIAL ONLY.
#[derive(Parser, Debug)]
#[command(name = "pki-fixtures", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a PKI whose CRL/OCSP URLs point at a responder on
    /// 127.0.0.1, write it to DIR and serve its CRLs and OCSP until
    /// interrupted. Revocations can't be added from here (use the library).
    Serve {
        /// Output directory for the PKI files.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Where to listen (loopback only).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Key algorithm for every certificate.
        #[arg(long, value_enum, default_value_t = AlgArg::P256)]
        alg: AlgArg,
    },
    /// Write the standard PKI and manifest.json into a directory.
    Generate {
        /// Output directory (created if missing; existing files are overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Key algorithm for every certificate.
        #[arg(long, value_enum, default_value_t = AlgArg::P256)]
        alg: AlgArg,
        /// Prefix of the CRL distribution point and OCSP URLs in the certificates.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080", value_parser = parse_base_url)]
        base_url: String,
        /// Reference time (RFC 3339) for all validity windows; defaults to the current time.
        #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
        now: Option<OffsetDateTime>,
        /// Print only a summary line instead of one line per file.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AlgArg {
    /// ECDSA P-256
    P256,
    /// RSA 2048 (keys from a shared pool)
    Rsa2048,
    /// Ed25519
    Ed25519,
}

impl From<AlgArg> for KeyAlg {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::P256 => KeyAlg::EcdsaP256,
            AlgArg::Rsa2048 => KeyAlg::Rsa2048,
            AlgArg::Ed25519 => KeyAlg::Ed25519,
        }
    }
}

fn parse_now(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("expected an RFC 3339 time like 2025-01-31T12:00:00Z ({e})"))
}

fn parse_base_url(s: &str) -> Result<String, String> {
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() || !trimmed.is_ascii() || trimmed.bytes().any(|b| b.is_ascii_control()) {
        return Err("must be non-empty printable ASCII".to_string());
    }
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err("must start with http:// or https://".to_string());
    }
    Ok(trimmed.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { out, listen, alg } => serve(out, listen, alg.into()),
        Command::Generate {
            out,
            alg,
            base_url,
            now,
            quiet,
        } => {
            let mut opts = PkiOptions {
                alg: alg.into(),
                base_url,
                ..PkiOptions::default()
            };
            if let Some(now) = now {
                opts.now = now;
            }
            let result = pki_fixtures::generate(&opts).and_then(|pki| pki.write_to(&out));
            match result {
                Ok(manifest) => {
                    if !quiet {
                        for f in &manifest.files {
                            let kind = serde_json::to_value(f.kind)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default();
                            println!(
                                "{:<44} {:<12} {}",
                                out.join(&f.path).display(),
                                kind,
                                f.role
                            );
                        }
                    }
                    println!(
                        "wrote {} files + manifest.json to {} (alg {}, now {}, base URL {})",
                        manifest.files.len(),
                        out.display(),
                        manifest.alg,
                        manifest.generated_at,
                        manifest.base_url
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("pki-fixtures: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `pki-fixtures serve`: bind, generate with the bound URL, write, serve.
fn serve(out: PathBuf, listen: std::net::SocketAddr, alg: KeyAlg) -> ExitCode {
    use pki_fixtures::responder::{Responder, ResponderOptions};
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pki-fixtures: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let binding = Responder::bind(ResponderOptions {
            addr: listen,
            ..ResponderOptions::default()
        })
        .await?;
        let opts = PkiOptions {
            alg,
            base_url: binding.base_url().to_owned(),
            ..PkiOptions::default()
        };
        let pki = tokio::task::spawn_blocking(move || pki_fixtures::generate(&opts))
            .await
            .map_err(|e| pki_fixtures::FixtureError::InvalidInput(e.to_string()))??;
        pki.write_to(&out)?;
        let responder = binding.serve(&pki).await?;
        println!(
            "serving CRLs and OCSP for the PKI in {} at {} (Ctrl-C to stop)",
            out.display(),
            responder.base_url()
        );
        let _ = tokio::signal::ctrl_c().await;
        responder.shutdown().await;
        Ok::<(), pki_fixtures::FixtureError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pki-fixtures: {e}");
            ExitCode::FAILURE
        }
    }
}
