//! What a verification asks for ([`VerifyOptions`]) and the verifier's
//! tunables ([`VerifierConfig`]), with the freshness rules of revocation
//! data: below the verifier, its snapshot and the verdict cache alike.

use crate::path::Usage;
use crate::{Depth, RevocationPolicy};

/// What a verification asks for.
///
/// Built with [`VerifyOptions::new`] (the usage the leaf must allow) and the
/// `with_*` setters; the fields are public to read. [`Default`] is
/// `new(Usage::Any)`. More fields may come, so other crates cannot build it
/// as a struct literal.
///
/// ```
/// use vigil_core::{Depth, RevocationPolicy, Usage, VerifyOptions};
///
/// let options = VerifyOptions::new(Usage::Server)
///     .with_name("api.example.com".to_owned())
///     .with_policy(RevocationPolicy::Prefer)
///     .with_depth(Depth::Leaf);
/// assert_eq!(options.name.as_deref(), Some("api.example.com"));
///
/// // The defaults are the strict choices: `require`, the whole chain.
/// let strict = VerifyOptions::new(Usage::Client);
/// assert_eq!(strict.policy, RevocationPolicy::Require);
/// assert_eq!(strict.depth, Depth::Chain);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Required extended key usage of the leaf.
    pub usage: Usage,
    /// Expected peer name (DNS name or IP address), for server certificates.
    pub name: Option<String>,
    /// Revocation policy (default `require`).
    pub policy: RevocationPolicy,
    /// Revocation depth (default the whole chain).
    pub depth: Depth,
}

impl VerifyOptions {
    /// Options for a leaf that must allow `usage`, with the defaults
    /// otherwise: no expected name, policy `require`, the whole chain.
    pub fn new(usage: Usage) -> Self {
        Self {
            usage,
            name: None,
            policy: RevocationPolicy::default(),
            depth: Depth::default(),
        }
    }

    /// Sets the extended key usage the leaf must allow (default
    /// [`Usage::Any`] for [`Default`], the argument of [`Self::new`]).
    #[must_use]
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the expected peer name, a DNS name or IP address, for server
    /// certificates; a `String` or an `Option<String>` (`None` checks no
    /// name). Default `None`.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<Option<String>>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the revocation policy (default [`RevocationPolicy::Require`]).
    #[must_use]
    pub fn with_policy(mut self, policy: RevocationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets which certificates revocation covers (default
    /// [`Depth::Chain`]).
    #[must_use]
    pub fn with_depth(mut self, depth: Depth) -> Self {
        self.depth = depth;
        self
    }
}

/// Which revocation methods are used, in which order of preference for a
/// "good" answer. A verified "revoked" from any enabled method always wins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Methods {
    /// OCSP first, then CRLs (the default).
    #[default]
    OcspThenCrl,
    /// CRLs first, then OCSP.
    CrlThenOcsp,
    /// OCSP only.
    OcspOnly,
    /// CRLs only.
    CrlOnly,
}

impl Methods {
    /// Whether OCSP is consulted.
    pub fn uses_ocsp(self) -> bool {
        !matches!(self, Self::CrlOnly)
    }

    /// Whether CRLs are consulted.
    pub fn uses_crl(self) -> bool {
        !matches!(self, Self::OcspOnly)
    }
}

/// Tunables of a [`crate::Verifier`]; the defaults are the strict choices.
///
/// Built from [`Default`] with the `with_*` setters; the fields are public
/// to read. More fields may come, so other crates cannot build it as a
/// struct literal.
///
/// ```
/// use vigil_core::{Methods, VerifierConfig};
///
/// let config = VerifierConfig::default()
///     .with_methods(Methods::CrlOnly)
///     .with_clock_skew_secs(60);
/// assert_eq!(config.clock_skew_secs, 60);
/// assert_eq!(config.stale_grace_secs, 0); // stale is stale
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// Tolerated clock difference, seconds: data whose thisUpdate lies up to
    /// this far in the future is used, and OCSP answers are used this long
    /// past their nextUpdate. Default 300.
    pub clock_skew_secs: i64,
    /// How long an OCSP answer without nextUpdate is used (RFC 5019 §4
    /// leaves it to the client). Default 24 hours.
    pub ocsp_max_age_secs: i64,
    /// Methods and their order.
    pub methods: Methods,
    /// How long past nextUpdate CRLs and OCSP answers are still used when
    /// nothing newer can be had. Default 0: stale is stale.
    pub stale_grace_secs: i64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            clock_skew_secs: 300,
            ocsp_max_age_secs: 24 * 3600,
            methods: Methods::OcspThenCrl,
            stale_grace_secs: 0,
        }
    }
}

impl VerifierConfig {
    /// Sets the tolerated clock difference, seconds (default 300).
    #[must_use]
    pub fn with_clock_skew_secs(mut self, secs: i64) -> Self {
        self.clock_skew_secs = secs;
        self
    }

    /// Sets how long an OCSP answer without nextUpdate is used, seconds
    /// (default 24 hours).
    #[must_use]
    pub fn with_ocsp_max_age_secs(mut self, secs: i64) -> Self {
        self.ocsp_max_age_secs = secs;
        self
    }

    /// Sets the revocation methods and their order (default
    /// [`Methods::OcspThenCrl`]).
    #[must_use]
    pub fn with_methods(mut self, methods: Methods) -> Self {
        self.methods = methods;
        self
    }

    /// Sets how long past nextUpdate revocation data is still used when
    /// nothing newer can be had, seconds (default 0: stale is stale).
    #[must_use]
    pub fn with_stale_grace_secs(mut self, secs: i64) -> Self {
        self.stale_grace_secs = secs;
        self
    }
}

/// Whether revocation data is usable at a time, by its thisUpdate and
/// nextUpdate: the one place the freshness rules live (the verifier and
/// the runtime's refresh both ask [`VerifierConfig::crl_freshness`] and
/// [`VerifierConfig::ocsp_freshness`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Current: usable.
    Current,
    /// Its thisUpdate lies further in the future than the tolerated clock
    /// skew.
    NotYetValid {
        /// thisUpdate, Unix seconds.
        this_update: i64,
    },
    /// Past its nextUpdate (and the tolerated grace).
    Stale {
        /// When it stopped being current, Unix seconds: nextUpdate for a
        /// CRL, the answer's expiry for OCSP.
        expired: i64,
    },
}

impl VerifierConfig {
    /// RFC 5280 §6.3.3 (a)(2) and §5.1.2.4-5: a CRL is used from its
    /// thisUpdate (less the clock skew) until its nextUpdate (plus the
    /// stale grace); one without nextUpdate does not go stale.
    pub fn crl_freshness(&self, this_update: i64, next_update: Option<i64>, now: i64) -> Freshness {
        if this_update > now + self.clock_skew_secs {
            Freshness::NotYetValid { this_update }
        } else if let Some(next) = next_update.filter(|n| n + self.stale_grace_secs < now) {
            Freshness::Stale { expired: next }
        } else {
            Freshness::Current
        }
    }

    /// RFC 6960 §3.2 (4)-(5) and RFC 5019 §4: an OCSP answer is used from
    /// its thisUpdate (less the clock skew) until its nextUpdate, or
    /// thisUpdate plus [`VerifierConfig::ocsp_max_age_secs`] without one
    /// (plus the clock skew and the stale grace).
    pub fn ocsp_freshness(
        &self,
        this_update: i64,
        next_update: Option<i64>,
        now: i64,
    ) -> Freshness {
        let expires = next_update.unwrap_or(this_update + self.ocsp_max_age_secs);
        if this_update > now + self.clock_skew_secs {
            Freshness::NotYetValid { this_update }
        } else if expires + self.clock_skew_secs + self.stale_grace_secs < now {
            Freshness::Stale { expired: expires }
        } else {
            Freshness::Current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_verify_options_setter_sets_its_own_field() {
        let built = VerifyOptions::new(Usage::Client)
            .with_name("a.test".to_owned())
            .with_policy(RevocationPolicy::Off)
            .with_depth(Depth::Leaf);
        let expected = VerifyOptions {
            usage: Usage::Client,
            name: Some("a.test".to_owned()),
            policy: RevocationPolicy::Off,
            depth: Depth::Leaf,
        };
        assert_eq!(built, expected);
        assert_eq!(built.with_usage(Usage::Server).usage, Usage::Server);
        assert_eq!(expected.with_name(None).name, None);
        assert_eq!(VerifyOptions::new(Usage::Any), VerifyOptions::default());
    }

    #[test]
    fn each_verifier_config_setter_sets_its_own_field() {
        let built = VerifierConfig::default()
            .with_clock_skew_secs(1)
            .with_ocsp_max_age_secs(2)
            .with_methods(Methods::CrlThenOcsp)
            .with_stale_grace_secs(3);
        let expected = VerifierConfig {
            clock_skew_secs: 1,
            ocsp_max_age_secs: 2,
            methods: Methods::CrlThenOcsp,
            stale_grace_secs: 3,
        };
        assert_eq!(built, expected);
    }
}
