//! A CRL and OCSP responder for the fixture PKI, on 127.0.0.1, for tests, benchmarks and
//! the drill. **Test material**: it signs with fixture keys and answers anyone who asks.
//!
//! # Routes
//!
//! * `GET /crl/{ca}.crl`: the CA's current CRL, DER, `application/pkix-crl`
//!   (`?pem`: PEM, `application/x-pem-file`), with a strong `ETag` (a SHA-256 prefix of
//!   the body) and `Last-Modified`; `304 Not Modified` when `If-None-Match` matches, or,
//!   without `If-None-Match`, when `If-Modified-Since` is not older than Last-Modified
//!   (RFC 9110 §13.2.2). Last-Modified strictly increases from one CRL to the next.
//! * `POST /ocsp/{ca}` (body: DER OCSPRequest) and `GET /ocsp/{ca}/{base64 request}`
//!   (RFC 6960 Appendix A, RFC 5019 §5; standard or URL-safe base64, percent-encoded or
//!   not): an OCSPResponse, `application/ocsp-response`, HTTP 200. CertIDs may use SHA-1,
//!   SHA-256, SHA-384 or SHA-512 and are echoed verbatim; a nonce extension is echoed in
//!   responseExtensions. Each certificate is `revoked` (time, reason) if revoked,
//!   `good` if the CA issued it (anything in the [`Pki`], the delegated responder,
//!   [`Responder::register`]ed or revoked certificates), `unknown` otherwise.
//!   thisUpdate = producedAt = now, nextUpdate = now + [`ResponderOptions::ocsp_validity`].
//!   Signed by the CA (responderID byKey by default) or by a delegated responder
//!   certificate it issued (id-kp-OCSPSigning, sent in `certs`), see [`OcspSigner`].
//!   A request that does not parse gets `malformedRequest`; a CertID of another issuer
//!   (or with another hash algorithm) gets `unauthorized`.
//! * Anything else, or an unknown CA: 404 (`GET /ocsp/{ca}` alone: 405).
//!
//! The CRL served at first is the [`Pki`]'s own `{ca}.crl` (byte for byte), and its
//! entries are the initial revocations. [`Responder::revoke`] and friends re-sign the
//! CA's CRL at once (cRLNumber + 1, thisUpdate = now, nextUpdate = now +
//! [`ResponderOptions::crl_validity`]); OCSP answers are made per request, so they
//! follow immediately.
//!
//! # Misbehaviour
//!
//! [`Responder::set_behaviour`] makes CRL routes, OCSP routes or both misbehave; see
//! [`Behaviour`] for what each looks like on the wire.
//!
//! # Certificates that point here
//!
//! Certificates carry their CRL and OCSP URLs from generation time, so generate the PKI
//! for the responder's address: [`start_with_fresh_pki`] does it in one call;
//! [`Responder::bind`] then [`Binding::serve`] lets the caller generate in between.
//!
//! ```
//! use pki_fixtures::responder::{start_with_fresh_pki, ResponderOptions};
//! use pki_fixtures::{PkiOptions, Reason};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pki_fixtures::FixtureError> {
//! let (responder, pki) =
//!     start_with_fresh_pki(PkiOptions::default(), ResponderOptions::default()).await?;
//! assert!(pki.client.pem.len() > 0);
//! assert_eq!(
//!     responder.crl_url("intermediate"),
//!     format!("{}/crl/intermediate.crl", responder.base_url())
//! );
//! let published = responder.revoke(&pki.client, Reason::KeyCompromise)?;
//! assert_eq!(published.crl_number, pki.intermediate_crl.number + 1);
//! responder.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod clock;
mod http;
mod net;
mod options;
mod request;
mod state;
mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::Clock;
pub use options::{
    Behaviour, Behaviours, OcspSigner, Publication, RequestCounts, ResponderIdKind,
    ResponderOptions, Target,
};
pub use request::{ocsp_get_url, ocsp_request};

use crate::{Ca, Cert, Crl, FixtureError, Pki, PkiOptions, Reason};
use net::{ResponderListener, Socket};
use state::{CaState, Revocation};

/// How long [`Responder::shutdown`] lets requests in flight finish before abandoning them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything the request handlers share with the [`Responder`] handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    clock: Clock,
    socket: Arc<Socket>,
}

pub(crate) struct State {
    cas: BTreeMap<String, CaState>,
    behaviours: Behaviours,
    signer: OcspSigner,
    responder_id: ResponderIdKind,
    ocsp_validity: Duration,
    crl_validity: Duration,
    totals: RequestCounts,
    per_ca: BTreeMap<String, RequestCounts>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A bound but not yet serving responder: its URL is known, so certificates can be
/// generated for it before [`Binding::serve`].
pub struct Binding {
    socket: Arc<Socket>,
    base_url: String,
    opts: ResponderOptions,
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binding")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Binding {
    /// `http://127.0.0.1:PORT`, the `base_url` to generate certificates with.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.addr()
    }

    /// Starts answering for every CA of `pki` (see the module documentation).
    pub async fn serve(self, pki: &Pki) -> Result<Responder, FixtureError> {
        let now = self.opts.clock.now();
        let mut cas = BTreeMap::new();
        for ca in pki.cas() {
            let crl = pki.crl(&format!("{}.crl", ca.name()));
            let state = CaState::new(ca, crl, now, self.opts.crl_validity, &self.base_url)?;
            cas.insert(ca.name().to_string(), state);
        }
        for cert in pki.certs().filter(|c| c.issuer != c.name) {
            if let Some(ca) = cas.get_mut(&cert.issuer) {
                ca.register(&cert.serial);
            }
        }
        let state = State {
            cas,
            behaviours: Behaviours::default(),
            signer: self.opts.signer,
            responder_id: self.opts.responder_id,
            ocsp_validity: self.opts.ocsp_validity,
            crl_validity: self.opts.crl_validity,
            totals: RequestCounts::default(),
            per_ca: BTreeMap::new(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            clock: self.opts.clock.clone(),
            socket: Arc::clone(&self.socket),
        });
        let app = http::router(Arc::clone(&shared))
            .into_make_service_with_connect_info::<net::ConnHandle>();
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = ResponderListener(Arc::clone(&self.socket));
        let task = self.socket.runtime().spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Responder {
            shared,
            base_url: self.base_url,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running responder. Dropping it stops accepting connections at once (requests in
/// flight finish in the background); [`Responder::shutdown`] also waits for them.
pub struct Responder {
    shared: Arc<Shared>,
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Binds a responder, generates the standard [`Pki`] with `pki_opts` but `base_url` set
/// to the responder's, and serves it. Key generation runs on a blocking thread.
pub async fn start_with_fresh_pki(
    pki_opts: PkiOptions,
    opts: ResponderOptions,
) -> Result<(Responder, Pki), FixtureError> {
    let binding = Responder::bind(opts).await?;
    let pki_opts = PkiOptions {
        base_url: binding.base_url().to_string(),
        ..pki_opts
    };
    let pki = tokio::task::spawn_blocking(move || crate::generate(&pki_opts))
        .await
        .map_err(|e| FixtureError::Generation(format!("PKI generation task: {e}")))??;
    let responder = binding.serve(&pki).await?;
    Ok((responder, pki))
}

impl Responder {
    /// Binds `opts.addr` (which must be a loopback address). Must run on a tokio runtime.
    pub async fn bind(opts: ResponderOptions) -> Result<Binding, FixtureError> {
        if !opts.addr.ip().is_loopback() {
            return Err(FixtureError::invalid(format!(
                "the test responder only listens on loopback addresses, not {}",
                opts.addr
            )));
        }
        let socket = Socket::bind(opts.addr)?;
        let base_url = format!("http://{}", socket.addr());
        Ok(Binding {
            socket,
            base_url,
            opts,
        })
    }

    /// [`Responder::bind`] then [`Binding::serve`]. The certificates of `pki` point at
    /// this responder only if it was generated for `opts.addr`.
    pub async fn start(pki: &Pki, opts: ResponderOptions) -> Result<Responder, FixtureError> {
        Self::bind(opts).await?.serve(pki).await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.socket.addr()
    }

    /// `{base_url}/crl/{ca}.crl`.
    pub fn crl_url(&self, ca: &str) -> String {
        crate::crl_url(&self.base_url, ca)
    }

    /// `{base_url}/ocsp/{ca}`.
    pub fn ocsp_url(&self, ca: &str) -> String {
        crate::ocsp_url(&self.base_url, ca)
    }

    /// The responder's clock (a handle: moving it moves the responder's time).
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Revokes `cert` (under its issuer, `cert.issuer`) now, for `reason`, and publishes
    /// the issuer's next CRL.
    pub fn revoke(&self, cert: &Cert, reason: Reason) -> Result<Publication, FixtureError> {
        self.revoke_serial(&cert.issuer, &cert.serial, reason)
    }

    /// Revokes serial `serial` (big-endian unsigned) of CA `ca` now and publishes the
    /// CA's next CRL.
    pub fn revoke_serial(
        &self,
        ca: &str,
        serial: &[u8],
        reason: Reason,
    ) -> Result<Publication, FixtureError> {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let validity = state.crl_validity;
        let ca = ca_mut(&mut state, ca)?;
        ca.revoke(
            serial,
            Revocation {
                at: now,
                reason: Some(reason),
            },
        );
        ca.publish(now, validity)
    }

    /// Revokes every certificate of `certs` now and publishes each affected CA's next
    /// CRL once. Returns one publication per affected CA, in CA role order.
    pub fn revoke_many(
        &self,
        certs: &[&Cert],
        reason: Reason,
    ) -> Result<Vec<Publication>, FixtureError> {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        if let Some(cert) = certs.iter().find(|c| !state.cas.contains_key(&c.issuer)) {
            return Err(unknown_ca(&cert.issuer));
        }
        let validity = state.crl_validity;
        let mut touched = std::collections::BTreeSet::new();
        for cert in certs {
            let ca = ca_mut(&mut state, &cert.issuer)?;
            ca.revoke(
                &cert.serial,
                Revocation {
                    at: now,
                    reason: Some(reason),
                },
            );
            touched.insert(cert.issuer.as_str());
        }
        touched
            .into_iter()
            .map(|role| ca_mut(&mut state, role)?.publish(now, validity))
            .collect()
    }

    /// Takes `cert` off its issuer's list (as after a released certificateHold) and
    /// publishes the next CRL. An error if it was not revoked.
    pub fn unrevoke(&self, cert: &Cert) -> Result<Publication, FixtureError> {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let validity = state.crl_validity;
        let ca = ca_mut(&mut state, &cert.issuer)?;
        if !ca.unrevoke(&cert.serial) {
            return Err(FixtureError::invalid(format!(
                "{} is not revoked by {}",
                cert.name, cert.issuer
            )));
        }
        ca.publish(now, validity)
    }

    /// Publishes CA `ca`'s next CRL with unchanged entries (new number, thisUpdate now).
    pub fn publish(&self, ca: &str) -> Result<Publication, FixtureError> {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let validity = state.crl_validity;
        ca_mut(&mut state, ca)?.publish(now, validity)
    }

    /// The CRL CA `ca` currently serves, as a publication.
    pub fn publication(&self, ca: &str) -> Option<Publication> {
        self.shared.lock().cas.get(ca).map(CaState::publication)
    }

    /// The CRL CA `ca` currently serves.
    pub fn current_crl(&self, ca: &str) -> Option<Crl> {
        self.shared
            .lock()
            .cas
            .get(ca)
            .map(|c| c.served().crl.clone())
    }

    /// The delegated OCSP responder certificate of CA `ca` (see
    /// [`OcspSigner::Delegated`]).
    pub fn delegate(&self, ca: &str) -> Option<Cert> {
        self.shared
            .lock()
            .cas
            .get(ca)
            .map(|c| c.delegate_cert().clone())
    }

    /// Makes OCSP answer `good` for `cert` (a certificate issued after the PKI, e.g. with
    /// [`Ca::issue_leaf`]) instead of `unknown`.
    pub fn register(&self, cert: &Cert) -> Result<(), FixtureError> {
        let mut state = self.shared.lock();
        ca_mut(&mut state, &cert.issuer)?.register(&cert.serial);
        Ok(())
    }

    /// Starts answering for another CA (one of a custom hierarchy), from `crl` if given
    /// or from an empty CRL number 1. An error if a CA of that role is already served.
    pub fn add_ca(&self, ca: &Ca, crl: Option<&Crl>) -> Result<(), FixtureError> {
        let state = CaState::new(
            ca,
            crl,
            self.shared.clock.now(),
            self.shared.lock().crl_validity,
            &self.base_url,
        )?;
        let mut guard = self.shared.lock();
        if guard.cas.contains_key(ca.name()) {
            return Err(FixtureError::invalid(format!(
                "the responder already serves a CA named {}",
                ca.name()
            )));
        }
        guard.cas.insert(ca.name().to_string(), state);
        Ok(())
    }

    /// Sets the behaviour of `target`'s routes. Fails only when the listening socket
    /// must be bound again (leaving [`Behaviour::Down`]) and the port is taken.
    pub fn set_behaviour(&self, target: Target, behaviour: Behaviour) -> Result<(), FixtureError> {
        let mut state = self.shared.lock();
        let mut next = state.behaviours;
        if matches!(target, Target::All | Target::Crl) {
            next.crl = behaviour;
        }
        if matches!(target, Target::All | Target::Ocsp) {
            next.ocsp = behaviour;
        }
        let down = next.crl == Behaviour::Down && next.ocsp == Behaviour::Down;
        self.shared.socket.set_open(!down)?;
        state.behaviours = next;
        Ok(())
    }

    /// The current behaviours.
    pub fn behaviours(&self) -> Behaviours {
        self.shared.lock().behaviours
    }

    /// Changes who signs OCSP answers from now on.
    pub fn set_ocsp_signer(&self, signer: OcspSigner) {
        self.shared.lock().signer = signer;
    }

    /// Changes how OCSP answers name their signer from now on.
    pub fn set_responder_id(&self, kind: ResponderIdKind) {
        self.shared.lock().responder_id = kind;
    }

    /// Requests received so far, all CAs together.
    pub fn counts(&self) -> RequestCounts {
        self.shared.lock().totals
    }

    /// Requests received so far for CA `ca`.
    pub fn counts_for(&self, ca: &str) -> RequestCounts {
        self.shared
            .lock()
            .per_ca
            .get(ca)
            .copied()
            .unwrap_or_default()
    }

    /// Stops accepting connections and waits (up to 5 s) for requests in flight.
    pub async fn shutdown(mut self) {
        self.stop_accepting();
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    fn stop_accepting(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.shared.socket.set_open(false);
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

fn unknown_ca(role: &str) -> FixtureError {
    FixtureError::invalid(format!("the responder serves no CA named {role:?}"))
}

fn ca_mut<'a>(state: &'a mut State, role: &str) -> Result<&'a mut CaState, FixtureError> {
    state.cas.get_mut(role).ok_or_else(|| unknown_ca(role))
}
