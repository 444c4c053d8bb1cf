//! Shared by the CLI tests that run one `vigil` command and read what it
//! printed (`verify_cli`, `ocsp_cli`, `check_cli`, `golden`): a command
//! line built up with [`Run`], run to completion as the real binary, its
//! output captured in [`Output`]; and [`Live`], a responder serving a
//! fresh fixture PKI. Each test file adds its own builder methods and its
//! reading of the JSON in `impl Run` / `impl Live` blocks of its own.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::ffi::{OsStr, OsString};
use std::process::Command;

use serde_json::Value;

/// The binary under test.
pub fn vigil() -> &'static str {
    env!("CARGO_BIN_EXE_vigil")
}

/// One invocation of the binary being built up.
pub struct Run {
    pub args: Vec<OsString>,
    pub envs: Vec<(OsString, OsString)>,
}

/// What the binary did.
pub struct Output {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Default for Run {
    fn default() -> Self {
        Self::new()
    }
}

impl Run {
    pub fn new() -> Self {
        Self {
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(self, args: I) -> Self {
        args.into_iter().fold(self, Run::arg)
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Runs the binary to completion. Proxy variables are removed from its
    /// environment: the fixtures' responders are on 127.0.0.1 and no proxy
    /// may come in between. Fails the test if the binary panicked.
    pub fn output(&self) -> Output {
        let mut command = Command::new(vigil());
        command.args(&self.args);
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let out = command.output().unwrap();
        let out = Output {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !out.stderr.contains("panicked"),
            "vigil panicked with {:?}: {}",
            self.args,
            out.stderr
        );
        out
    }

    /// Runs with `--format json`: what the binary did and its stdout read
    /// as one JSON value (the test fails when it is not).
    pub fn json_output(self) -> (Output, Value) {
        let out = self.arg("--format").arg("json").output();
        let value: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}): {:?} / stderr {}",
                out.stdout, out.stderr
            )
        });
        (out, value)
    }
}

/// Exit status 2, nothing on stdout, and stderr mentions every `needle`.
#[track_caller]
pub fn assert_usage_error(out: &Output, needles: &[&str]) {
    assert_eq!(
        out.code,
        Some(2),
        "stdout {:?} stderr {:?}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "stdout on a usage error: {:?}",
        out.stdout
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "stderr {:?} does not mention {needle:?}",
            out.stderr
        );
    }
}

/// A responder serving a fresh fixture PKI on a runtime of its own, and
/// that PKI on disk.
pub struct Live {
    // Dropped before the runtime that serves it.
    pub responder: pki_fixtures::responder::Responder,
    pub pki: pki_fixtures::Pki,
    pub files: pki_fixtures::PkiDir,
    _runtime: tokio::runtime::Runtime,
}

impl Live {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (responder, pki) = runtime
            .block_on(pki_fixtures::responder::start_with_fresh_pki(
                pki_fixtures::PkiOptions::default(),
                pki_fixtures::responder::ResponderOptions::default(),
            ))
            .unwrap();
        let files = pki_fixtures::PkiDir::new(&pki).unwrap();
        Self {
            responder,
            pki,
            files,
            _runtime: runtime,
        }
    }

    /// A file of the PKI on disk.
    pub fn file(&self, name: &str) -> std::path::PathBuf {
        self.files.file(name)
    }
}
