//! `vigil check`: a live revocation check of one certificate against the
//! sources it names itself, every CRL distribution point (RFC 5280
//! §4.2.1.13) and every OCSP responder of its authorityInfoAccess (RFC 5280
//! §4.2.2.1).
//!
//! Each source is fetched and then judged on its own, by a verifier that
//! knows the issuer (as its only anchor) and that one CRL or OCSP response,
//! so the output says what every source answers. The verdict, and the exit
//! status, come from all the data together under the chosen policy and
//! method order, as `vigil verify` would decide with those files.
//!
//! The check is about the certificate's revocation status under that
//! issuer: the chain above the issuer is not validated.

mod fetch;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use vigil_core::revocation::{
    revocation_sources, CertIdHash, CrlSigner, OcspError, ParsedCrl, ParsedOcsp,
};
use vigil_core::revocation::{CrlError, VerifiedCrl};
use vigil_core::{
    input, CertificateDer, Depth, Methods, ReasonCode, RevocationPolicy, TrustStore, Usage,
    Verdict, Verifier, VerifierConfig, VerifyOptions,
};
use vigil_runtime::OcspMethod;

use crate::verify::{parse_time, Format, PolicyArg};
use crate::UsageError;
use fetch::{fetch_all, Body, Fetched, Job};
use report::{Kind, NonceCheck, Report, SourceError, SourceReport, SourceStatus};

/// Raw flags of `vigil check`, per the contract in ARCHITECTURE.md.
#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The certificate to check (PEM or DER). In a PEM file, the
    /// certificates after the first are candidates for its issuer.
    #[arg(value_name = "CERT")]
    cert: PathBuf,
    /// The issuer's certificate (PEM or DER), when CERT does not carry it.
    #[arg(long, value_name = "FILE")]
    issuer: Option<PathBuf>,
    /// Revocation policy of the verdict: off, prefer (soft-fail) or require
    /// (hard-fail). With off, no source is consulted.
    #[arg(long, value_enum, default_value_t = PolicyArg::Require)]
    revocation: PolicyArg,
    /// Which methods are consulted, and which one's answer is preferred.
    #[arg(long, value_enum, default_value_t = MethodArg::OcspThenCrl)]
    method: MethodArg,
    /// Time allowed for each fetch, retries included, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10")]
    timeout: String,
    /// Hash of the OCSP CertID.
    #[arg(long = "ocsp-hash", value_enum, default_value_t = HashArg::Sha1)]
    ocsp_hash: HashArg,
    /// Send a nonce with OCSP requests (RFC 8954); a response that echoes
    /// another nonce is refused.
    #[arg(long)]
    nonce: bool,
    /// Validation time, RFC 3339 (default: now). Fetching happens now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    fetch: crate::fetch_args::FetchArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MethodArg {
    OcspThenCrl,
    CrlThenOcsp,
    Ocsp,
    Crl,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum HashArg {
    Sha1,
    Sha256,
}

/// Longest `--timeout` accepted, seconds.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

/// The checked settings of one run.
struct Settings {
    cert: CertificateDer<'static>,
    issuer: CertificateDer<'static>,
    policy: RevocationPolicy,
    methods: Methods,
    method_name: &'static str,
    timeout: Duration,
    hash: CertIdHash,
    nonce: bool,
    at: SystemTime,
    format: Format,
}

pub(crate) fn run(args: CheckArgs) -> Result<ExitCode, UsageError> {
    let settings = Settings::from_args(&args)?;
    let mut trust = TrustStore::new();
    trust
        .add(settings.issuer.clone())
        .map_err(|e| UsageError(format!("issuer: {e}")))?;
    let named = revocation_sources(&settings.cert)?;
    let named_count = named.crl_urls.len() + named.ocsp_urls.len();
    // The same cap as the engine's: a certificate naming hundreds of URLs
    // costs a few fetches.
    let (sources, ignored) = vigil_runtime::cap_sources(named);
    if ignored > 0 {
        eprintln!(
            "vigil: warning: {ignored} revocation URLs of the certificate ignored (at most {} CRL \
             and {} OCSP URLs are fetched)",
            vigil_runtime::MAX_CRL_URLS_PER_CERT,
            vigil_runtime::MAX_OCSP_URLS_PER_CERT
        );
    }
    let plan = plan(&sources, settings.methods);

    let fetched = if settings.policy == RevocationPolicy::Off || plan.is_empty() {
        Vec::new()
    } else {
        let jobs = plan
            .iter()
            .map(|(kind, url)| Job::new(*kind, url, &settings))
            .collect::<Result<Vec<_>, _>>()?;
        fetch_all(jobs, settings.timeout, &args.fetch)?
    };

    let judge = Judge {
        trust: &trust,
        settings: &settings,
    };
    let judged: Vec<Judged> = fetched.into_iter().map(|f| judge.source(f)).collect();
    let verdict = judge.overall(&judged);
    let report = Report {
        certificate: report::certificate(&verdict, &settings.cert),
        sources: judged.into_iter().map(|j| j.report).collect(),
        verdict,
        named: named_count,
        method: settings.method_name,
        policy: settings.policy,
    };
    match settings.format {
        Format::Json => println!("{}", report.to_json()),
        Format::Text => print!("{}", report.to_text()),
    }
    if report.verdict.reason == ReasonCode::UnsupportedCaEndEntity {
        // The verifier reaches revocation only through path validation,
        // which (like rustls-webpki) refuses a CA certificate as the leaf.
        eprintln!(
            "vigil: note: checking a CA certificate is not supported yet: \
             the verifier refuses a CA certificate as the end entity"
        );
    }
    Ok(if report.verdict.is_accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

impl Settings {
    fn from_args(args: &CheckArgs) -> Result<Self, UsageError> {
        let at = match &args.at {
            Some(text) => parse_time(text)?,
            None => SystemTime::now(),
        };
        let timeout = parse_timeout(&args.timeout)?;
        let mut certs = load(&args.cert)?.into_iter();
        let cert = certs
            .next()
            .ok_or_else(|| UsageError(format!("{}: no certificate", args.cert.display())))?;
        let candidates: Vec<_> = match &args.issuer {
            Some(path) => load(path)?,
            None => certs.collect(),
        };
        if candidates.is_empty() {
            return Err(UsageError(format!(
                "{}: holds only the certificate to check; its issuer is needed: \
                 give --issuer FILE or append the issuer's certificate to the file",
                args.cert.display()
            )));
        }
        let issuer = choose_issuer(&cert, candidates, at);
        let (methods, method_name) = match args.method {
            MethodArg::OcspThenCrl => (Methods::OcspThenCrl, "ocsp-then-crl"),
            MethodArg::CrlThenOcsp => (Methods::CrlThenOcsp, "crl-then-ocsp"),
            MethodArg::Ocsp => (Methods::OcspOnly, "ocsp"),
            MethodArg::Crl => (Methods::CrlOnly, "crl"),
        };
        Ok(Self {
            cert,
            issuer,
            policy: args.revocation.policy(),
            methods,
            method_name,
            timeout,
            hash: match args.ocsp_hash {
                HashArg::Sha1 => CertIdHash::Sha1,
                HashArg::Sha256 => CertIdHash::Sha256,
            },
            nonce: args.nonce,
            at,
            format: args.format,
        })
    }
}

/// Every certificate of a PEM file, or its one DER certificate.
fn load(path: &Path) -> Result<Vec<CertificateDer<'static>>, UsageError> {
    let bytes = input::read_file(path)?;
    Ok(input::parse_certificates(
        &bytes,
        &path.display().to_string(),
    )?)
}

fn parse_timeout(text: &str) -> Result<Duration, UsageError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_TIMEOUT_SECS)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            UsageError(format!(
                "--timeout: '{text}' is not a number of seconds above 0 and at most \
                 {MAX_TIMEOUT_SECS} (e.g. 10 or 2.5)"
            ))
        })
}

/// The first candidate that issued `cert` (a path from `cert` to it
/// validates), else the first candidate: the verdict then says why it is
/// not the issuer. A chain file (leaf, intermediate, root) thus works as is.
fn choose_issuer(
    cert: &CertificateDer<'static>,
    candidates: Vec<CertificateDer<'static>>,
    at: SystemTime,
) -> CertificateDer<'static> {
    let options = VerifyOptions::new(Usage::Any)
        .with_policy(RevocationPolicy::Off)
        .with_depth(Depth::Leaf);
    let issued = candidates.iter().position(|candidate| {
        let mut trust = TrustStore::new();
        trust.add(candidate.clone()).is_ok()
            && Verifier::new(trust)
                .verify_uncached(std::slice::from_ref(cert), &options, at)
                .is_accepted()
    });
    let mut candidates = candidates;
    candidates.swap_remove(issued.unwrap_or(0))
}

/// The sources to consult, in the order of preference of `methods`;
/// a method that is not used is not consulted.
fn plan(sources: &vigil_core::revocation::Sources, methods: Methods) -> Vec<(Kind, String)> {
    let crls = sources.crl_urls.iter().map(|u| (Kind::Crl, u.clone()));
    let ocsp = sources.ocsp_urls.iter().map(|u| (Kind::Ocsp, u.clone()));
    let ordered: Vec<_> = match methods {
        Methods::CrlThenOcsp => crls.chain(ocsp).collect(),
        Methods::OcspOnly => ocsp.collect(),
        Methods::CrlOnly => crls.collect(),
        // OcspThenCrl and any order added later.
        _ => ocsp.chain(crls).collect(),
    };
    let mut out: Vec<(Kind, String)> = Vec::with_capacity(ordered.len());
    for source in ordered {
        if !out.contains(&source) {
            out.push(source);
        }
    }
    out
}

/// A source after judging, with what the overall verdict may use of it.
struct Judged {
    report: SourceReport,
    usable: Usable,
}

/// The data a source contributes to the overall verdict.
enum Usable {
    Nothing,
    /// A CRL that verified with the issuer's key.
    VerifiedCrl(Arc<VerifiedCrl>),
    /// A CRL that did not verify: the verdict reports why.
    Crl(Vec<u8>),
    Ocsp(Vec<u8>),
}

/// Judges fetched data against the issuer, at the validation time.
struct Judge<'a> {
    trust: &'a TrustStore,
    settings: &'a Settings,
}

impl Judge<'_> {
    /// A verifier holding only the issuer, with this method order.
    fn verifier(&self, methods: Methods) -> Verifier {
        Verifier::with_config(
            self.trust.clone(),
            VerifierConfig::default().with_methods(methods),
        )
    }

    fn verify(&self, verifier: &Verifier, policy: RevocationPolicy) -> Verdict {
        let options = VerifyOptions::new(Usage::Any)
            .with_policy(policy)
            .with_depth(Depth::Leaf);
        verifier.verify_uncached(
            std::slice::from_ref(&self.settings.cert),
            &options,
            self.settings.at,
        )
    }

    /// The answer of one source alone, under `require`: what it says, not
    /// what a policy makes of it.
    fn source(&self, fetched: Fetched) -> Judged {
        let mut report = SourceReport::new(fetched.kind, fetched.url, fetched.elapsed);
        let usable = match fetched.result {
            Err(e) => {
                report.fail(SourceStatus::Error, e);
                Usable::Nothing
            }
            Ok(Body::Crl(der)) => self.crl(&mut report, der),
            Ok(Body::Ocsp { der, method, nonce }) => {
                report.http_method = Some(match method {
                    OcspMethod::Get => "GET",
                    OcspMethod::Post => "POST",
                });
                self.ocsp(&mut report, der, nonce.as_deref())
            }
        };
        Judged { report, usable }
    }

    fn crl(&self, report: &mut SourceReport, der: Vec<u8>) -> Usable {
        let times = match ParsedCrl::from_der(&der) {
            Ok(parsed) => (parsed.this_update(), parsed.next_update()),
            Err(e) => {
                report.fail(SourceStatus::Error, crl_error(&e));
                return Usable::Nothing;
            }
        };
        let mut verifier = self.verifier(Methods::CrlOnly);
        let signer = CrlSigner::from_cert_der(&self.settings.issuer);
        let usable = match signer.map(|s| VerifiedCrl::from_der(&der, &s)) {
            Ok(Ok(crl)) => {
                report.crl_number = crl.number().map(<[u8]>::to_vec);
                report.entries = Some(crl.len());
                let crl = Arc::new(crl);
                verifier.add_verified_crl(Arc::clone(&crl));
                Usable::VerifiedCrl(crl)
            }
            // Loaded the usual way, the verdict says what is wrong with it.
            _ => match verifier.add_crl(&der) {
                Ok(_) => Usable::Crl(der),
                Err(e) => {
                    report.fail(SourceStatus::Error, crl_error(&e));
                    return Usable::Nothing;
                }
            },
        };
        let verdict = self.verify(&verifier, RevocationPolicy::Require);
        report.set_times(Some(times.0), times.1, self.at());
        report.answer(&verdict);
        if report.status == SourceStatus::Error {
            // Data that did not verify: its times mean nothing.
            report.clear_times();
        }
        usable
    }

    fn ocsp(&self, report: &mut SourceReport, der: Vec<u8>, sent: Option<&[u8]>) -> Usable {
        let fallback_times = match ParsedOcsp::from_der(&der) {
            Ok(parsed) => {
                if let Some(sent) = sent {
                    let check = match parsed.nonce() {
                        Some(echoed) if echoed == sent => NonceCheck::Echoed,
                        Some(_) => NonceCheck::Mismatch,
                        None => NonceCheck::NotEchoed,
                    };
                    report.nonce = Some(check);
                    if check == NonceCheck::Mismatch {
                        report.fail(
                            SourceStatus::Error,
                            SourceError::new(
                                "ocsp_nonce_mismatch",
                                "the response echoes another nonce than the one sent \
                                 (a replayed or misdirected answer); not used",
                            ),
                        );
                        return Usable::Nothing;
                    }
                }
                match parsed.responses() {
                    [only] => Some((only.this_update, only.next_update)),
                    _ => None,
                }
            }
            Err(e) => {
                report.fail(SourceStatus::Error, ocsp_error(&e));
                return Usable::Nothing;
            }
        };
        let mut verifier = self.verifier(Methods::OcspOnly);
        if let Err(e) = verifier.add_ocsp_response(&der) {
            report.fail(SourceStatus::Error, ocsp_error(&e));
            return Usable::Nothing;
        }
        let verdict = self.verify(&verifier, RevocationPolicy::Require);
        // The times of the answer that decided, else of the only answer.
        let decided = verdict
            .revocation
            .first()
            .and_then(|r| Some((r.this_update?, r.next_update)));
        if let Some((this, next)) = decided.or(fallback_times) {
            report.set_times(Some(this), next, self.at());
        }
        report.answer(&verdict);
        if report.status == SourceStatus::Error {
            report.clear_times();
        }
        Usable::Ocsp(der)
    }

    /// The verdict from every source's data together, under the chosen
    /// policy and method order.
    fn overall(&self, judged: &[Judged]) -> Verdict {
        let mut verifier = self.verifier(self.settings.methods);
        for j in judged {
            // Errors were reported with the source.
            match &j.usable {
                Usable::Nothing => {}
                Usable::VerifiedCrl(crl) => verifier.add_verified_crl(Arc::clone(crl)),
                Usable::Crl(der) => {
                    let _ = verifier.add_crl(der);
                }
                Usable::Ocsp(der) => {
                    let _ = verifier.add_ocsp_response(der);
                }
            }
        }
        self.verify(&verifier, self.settings.policy)
    }

    fn at(&self) -> i64 {
        report::unix_secs(self.settings.at)
    }
}

fn crl_error(e: &CrlError) -> SourceError {
    let code = match e {
        CrlError::Malformed { .. } => "crl_malformed",
        CrlError::UnsupportedVersion => "crl_unsupported_version",
        CrlError::SignatureAlgorithmMismatch => "crl_signature_algorithm_mismatch",
        CrlError::UnsupportedSignatureAlgorithm => "crl_unsupported_signature_algorithm",
        CrlError::BadSignature => "crl_signature_invalid",
        CrlError::IssuerMismatch => "crl_issuer_mismatch",
        CrlError::SignerNotCrlSigner => "crl_signer_not_authorized",
        CrlError::MissingCrlNumber => "crl_number_missing",
        CrlError::CriticalCrlNumber => "crl_number_critical",
        _ => "crl_invalid",
    };
    SourceError::new(code, e.to_string())
}

fn ocsp_error(e: &OcspError) -> SourceError {
    let code = match e {
        OcspError::Malformed { .. } => "ocsp_malformed",
        OcspError::NotSuccessful { .. } => "ocsp_not_successful",
        OcspError::UnsupportedResponseType => "ocsp_unsupported_response_type",
        OcspError::UnsupportedSignatureAlgorithm => "ocsp_unsupported_signature_algorithm",
        OcspError::BadSignature => "ocsp_signature_invalid",
        OcspError::UnauthorizedResponder { .. } => "ocsp_responder_not_authorized",
        _ => "ocsp_invalid",
    };
    SourceError::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_positive_bounded_seconds() {
        assert_eq!(parse_timeout("2").ok(), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("0.5").ok(), Some(Duration::from_millis(500)));
        for bad in ["0", "-1", "nan", "inf", "3601", "ten", ""] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_plan_follows_the_method_order_and_leaves_out_unused_methods() {
        let sources = vigil_core::revocation::Sources {
            crl_urls: vec!["http://c/1".into(), "http://c/1".into()],
            ocsp_urls: vec!["http://o/1".into()],
        };
        let kinds = |m| {
            plan(&sources, m)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(Methods::OcspThenCrl), [Kind::Ocsp, Kind::Crl]);
        assert_eq!(kinds(Methods::CrlThenOcsp), [Kind::Crl, Kind::Ocsp]);
        assert_eq!(kinds(Methods::OcspOnly), [Kind::Ocsp]);
        assert_eq!(kinds(Methods::CrlOnly), [Kind::Crl]);
    }
}
