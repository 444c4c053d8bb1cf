//! Revocation data shared by a fleet (fleet mode, `vigil-cluster`): a node
//! that fetched a CRL or an OCSP answer from the CA offers it to the
//! others, which take it instead of asking the CA, and one node at a time
//! asks the CA for a given source.
//!
//! What comes from the fleet is never trusted: an [`Engine`] puts a
//! [`SharedBody`] through every check a body fetched from the CA goes
//! through (signature and issuer, scope, freshness, CRL number rollback,
//! OCSP answer order) before it uses or stores it, and a body that fails
//! displaces nothing.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::SourceKind;

#[cfg(doc)]
use crate::Engine;

/// A boxed future, as [`Exchange`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A body as a node fetched it from the CA, with the validators it came
/// with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedBody {
    /// The DER: a CRL, or an OCSPResponse.
    pub bytes: Bytes,
    /// The `ETag` the CA sent.
    pub etag: Option<String>,
    /// The `Last-Modified` the CA sent.
    pub last_modified: Option<String>,
}

/// What the fleet says before this node asks the CA for a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Ask the CA: this node holds the fetch lease, or the fleet is out of
    /// reach.
    Fetch,
    /// Another node asked the CA within this refresh window and found
    /// nothing newer than what this node holds: nothing to do.
    Skip,
    /// A body another node fetched: checked, then used; when it is refused
    /// or not newer than what is held, the CA is asked.
    Take(SharedBody),
}

/// A fleet's exchange of revocation data. Sources are named by the
/// engine's key: a CRL's URL, or an OCSP source's key.
pub trait Exchange: Send + Sync + 'static {
    /// Called before the CA is asked for `key`; `held` is the thisUpdate
    /// of what this node holds (Unix seconds). `asked`: an operator asked
    /// for this refresh ([`Engine::asked`]): the CA is asked even when
    /// another node did in this window.
    fn turn<'a>(
        &'a self,
        kind: SourceKind,
        key: &'a str,
        held: Option<i64>,
        asked: bool,
    ) -> BoxFuture<'a, Turn>;
    /// What this node asked the CA for `key` passed every check: `body`,
    /// or none when the CA said it was not modified. `this_update` is what
    /// the node now holds.
    fn fetched(
        &self,
        kind: SourceKind,
        key: &str,
        this_update: Option<i64>,
        body: Option<SharedBody>,
    );
    /// Asking the CA for `key` failed (the lease is given up).
    fn fetch_failed(&self, kind: SourceKind, key: &str);
    /// A body from the fleet for `key` was refused, for `why`.
    fn refused(&self, kind: SourceKind, key: &str, why: &str);
    /// A body from the fleet for `key` passed and was newer than what was
    /// held: the node uses it.
    fn taken(&self, kind: SourceKind, key: &str);
}
