//! `--fetch-deny` / `--fetch-allow`: where fetches may connect (shared by
//! `vigil verify` and `vigil check`; `vigil serve` has its own, with
//! `VIGIL_*` environment and config file keys).

use clap::Args;
use vigil_runtime::{Cidr, FetchConfig};

/// Destination address rules for fetches (ARCHITECTURE.md, "Fetches").
#[derive(Args, Debug, Default, Clone)]
pub(crate) struct FetchArgs {
    /// Never fetch from addresses in this range (CIDR such as 10.0.0.0/8,
    /// or one address), on top of the default denials (link-local incl.
    /// 169.254.169.254, unspecified, multicast, broadcast); repeatable.
    /// Wins over --fetch-allow.
    #[arg(long = "fetch-deny", value_name = "CIDR", value_parser = parse_cidr)]
    pub(crate) fetch_deny: Vec<Cidr>,
    /// Lift a default denial for this range (e.g. a responder on a
    /// link-local address); repeatable. Does not lift --fetch-deny.
    #[arg(long = "fetch-allow", value_name = "CIDR", value_parser = parse_cidr)]
    pub(crate) fetch_allow: Vec<Cidr>,
}

impl FetchArgs {
    /// `config` with these rules.
    pub(crate) fn apply(&self, config: FetchConfig) -> FetchConfig {
        config
            .with_deny(self.fetch_deny.clone())
            .with_allow(self.fetch_allow.clone())
    }
}

/// A CIDR flag value; clap reports the error (exit status 2).
pub(crate) fn parse_cidr(text: &str) -> Result<Cidr, String> {
    text.parse::<Cidr>().map_err(|e| e.to_string())
}
