//! What the responder can be told: how to start, who signs, how to misbehave; and what
//! it reports back.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use time::{Duration, OffsetDateTime};

use super::Clock;
#[cfg(doc)]
use super::Responder;

/// How the responder is started.
#[derive(Clone, Debug)]
pub struct ResponderOptions {
    /// Where to listen. Default `127.0.0.1:0` (a free port). Only loopback addresses are
    /// accepted: this is a test server.
    pub addr: SocketAddr,
    /// nextUpdate - thisUpdate of OCSP answers. Default 1 hour.
    pub ocsp_validity: Duration,
    /// nextUpdate - thisUpdate of the CRLs the responder signs. Default 1 day.
    pub crl_validity: Duration,
    /// Who signs OCSP answers at first ([`Responder::set_ocsp_signer`] changes it).
    pub signer: OcspSigner,
    /// How OCSP answers name their signer at first.
    pub responder_id: ResponderIdKind,
    /// The responder's time. Default: the system clock.
    pub clock: Clock,
}

impl Default for ResponderOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ocsp_validity: Duration::hours(1),
            crl_validity: Duration::days(1),
            signer: OcspSigner::Ca,
            responder_id: ResponderIdKind::ByKey,
            clock: Clock::system(),
        }
    }
}

/// Who signs OCSP answers (RFC 6960 §4.2.2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OcspSigner {
    /// The CA that issued the certificate in question.
    #[default]
    Ca,
    /// A delegated responder: a leaf certificate `{ca}-ocsp` with id-kp-OCSPSigning,
    /// issued by the CA when the responder starts ([`Responder::delegate`]) and included
    /// in the response's `certs`.
    Delegated,
}

/// The responderID form of OCSP answers (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResponderIdKind {
    /// `byKey`: SHA-1 of the signer's subjectPublicKey (RFC 5019 §2.2.3 prefers it).
    #[default]
    ByKey,
    /// `byName`: the signer's subject name.
    ByName,
}

/// Which routes a [`Behaviour`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// CRL and OCSP routes.
    All,
    /// `GET /crl/...` only.
    Crl,
    /// `/ocsp/...` only.
    Ocsp,
}

/// What the responder does with requests, per route kind. Requests are counted
/// ([`Responder::counts`]) whatever the behaviour; unknown CAs still get 404.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Behaviour {
    /// Answer correctly.
    #[default]
    Normal,
    /// Wait this long after reading the request, then answer correctly (the answer's
    /// times are taken after the wait).
    Slow(std::time::Duration),
    /// `500 Internal Server Error`, `text/plain` body.
    Status500,
    /// `200 OK` with the usual content type and a body that is not DER (it starts with
    /// `pki-fixtures:`), no validators.
    Garbage,
    /// `200 OK`, usual content type, `Content-Length: n` (or the answer's length if that
    /// is more): the correct answer followed by zero bytes. No validators, never 304.
    /// The body is built in memory.
    Oversized(usize),
    /// Correctly signed data that is out of date: a CRL with the current number and
    /// entries but thisUpdate = now - crl_validity - 1 h and nextUpdate = now - 1 h; OCSP
    /// answers (current statuses) with thisUpdate = producedAt = now - ocsp_validity -
    /// 1 h and nextUpdate = now - 1 h.
    Stale,
    /// The CA's current data signed by an unrelated key of the same algorithm while
    /// claiming the usual signer: a CRL with the CA's issuer name and
    /// authorityKeyIdentifier; OCSP answers with the usual responderID (and `certs`).
    WrongSigner,
    /// CRL: the current CRL, signed by the CA's own key, with its cRLNumber extension
    /// missing or marked critical (RFC 5280 §5.2.3 forbids both). OCSP: as `Normal`.
    NonconformingCrl(crate::CrlNumberFault),
    /// OCSP: `200 OK` carrying an OCSPResponse with responseStatus `tryLater` (3) and no
    /// responseBytes. CRL: `503 Service Unavailable` with `Retry-After: 60`.
    TryLater,
    /// The request is read, then the connection is reset (TCP RST, SO_LINGER 0) without
    /// a byte of response: clients see "connection reset by peer" or, if they read
    /// nothing before the RST, an incomplete message.
    ConnectionReset,
    /// The responder is down. When both route kinds are `Down` the listening socket is
    /// closed, so connecting fails with "connection refused" (existing keep-alive
    /// connections are closed on their next request); it is bound again, same port,
    /// when either kind stops being `Down`. When only one kind is `Down`, its requests
    /// are read and the connection is closed (FIN) without a byte of response.
    Down,
}

/// Both current behaviours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Behaviours {
    /// Of CRL routes.
    pub crl: Behaviour,
    /// Of OCSP routes.
    pub ocsp: Behaviour,
}

/// Requests received, per route kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestCounts {
    /// `GET /crl/...` requests for a known CA, 304s included.
    pub crl: u64,
    /// Of those, how many were answered `304 Not Modified`.
    pub crl_not_modified: u64,
    /// `GET /ocsp/...` requests for a known CA.
    pub ocsp_get: u64,
    /// `POST /ocsp/...` requests for a known CA.
    pub ocsp_post: u64,
    /// Requests answered 404 (only in [`Responder::counts`], not per CA).
    pub not_found: u64,
}

impl RequestCounts {
    /// OCSP requests, GET and POST.
    pub fn ocsp(&self) -> u64 {
        self.ocsp_get + self.ocsp_post
    }
}

/// A CRL the responder has just started serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// Role of the CA.
    pub ca: String,
    /// Its cRLNumber.
    pub crl_number: u64,
    /// Its thisUpdate.
    pub this_update: OffsetDateTime,
    /// Its nextUpdate.
    pub next_update: OffsetDateTime,
    /// When the responder started serving it (and answering OCSP accordingly): the
    /// instant to measure propagation from.
    pub at: Instant,
}
