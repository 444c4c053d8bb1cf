//! The raw flags of `vigil proxy`, before they are checked.

use std::path::PathBuf;

use clap::Args;

use crate::serve::CommonArgs;
use crate::verify::UsageArg;

/// Raw flags of `vigil proxy` (ARCHITECTURE.md, `vigil proxy`).
#[derive(Args, Debug, Default)]
#[command(after_help = "\
Server mode (default): accepts mutual TLS on --listen, verifies and tracks each client's
certificate, and splices its bytes to --target (plain TCP, or TLS with --target-tls). When the
client's certificate becomes revoked, expired, unverifiable, untrusted or denied, both legs are
closed (close_notify to the client, FIN to the backend) and a teardown event is published.
Client mode (--client): a plain listener on loopback whose connections go out as mutual TLS to
--target; the server's certificate (and its stapled OCSP answer) is verified, tracked and
enforced the same way.
Several listen/target pairs: [[proxy]] tables in the --config file (keys: listen, target, cert,
key, client, name, target-tls, target-ca, usage, allow-dns, allow-uri, allow-subject,
allow-spki-sha256, proxy-protocol). SIGHUP reloads the allow rules, the certificates, the
trust anchors (connections under a removed anchor are closed as untrusted) and the target-ca
files from disk; a changed certificate file is picked up on its own.
The data dir, store, refresh, deny list, policy, fetch and fleet settings are `vigil serve`'s.
Exit status: 0 after a clean shutdown (SIGTERM/SIGINT: stop accepting, drain), 2 when the
settings are unusable at start, 1 when the proxy fails after starting.")]
pub(crate) struct ProxyArgs {
    /// Address to accept connections on (mTLS in server mode; plain TCP,
    /// loopback, in client mode).
    #[arg(long, env = "VIGIL_PROXY_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Where connections go: HOST:PORT.
    #[arg(long, env = "VIGIL_PROXY_TARGET", value_name = "HOST:PORT")]
    pub(crate) target: Option<String>,
    /// This proxy's certificate chain (PEM): the server certificate in
    /// server mode, the client certificate in client mode.
    #[arg(long, env = "VIGIL_PROXY_CERT", value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, env = "VIGIL_PROXY_KEY", value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// Client mode: plain listener, mutual TLS to --target.
    #[arg(long)]
    pub(crate) client: bool,
    /// Client mode: the name the server's certificate must carry
    /// [default: the host of --target].
    #[arg(long, value_name = "DNS-or-IP")]
    pub(crate) name: Option<String>,
    /// Server mode: speak TLS to the target too.
    #[arg(long)]
    pub(crate) target_tls: bool,
    /// Server mode with --target-tls: anchors for the target's certificate
    /// [default: --anchor].
    #[arg(long, value_name = "FILE")]
    pub(crate) target_ca: Option<PathBuf>,
    /// The extended key usage required of peers [default: client in server
    /// mode, server in client mode].
    #[arg(long, value_enum)]
    pub(crate) usage: Option<UsageArg>,
    /// Allow peers whose leaf has this DNS name (`*.example.com` matches one
    /// label); repeatable. With any --allow-* given, a peer matching none
    /// is refused at the handshake.
    #[arg(long = "allow-dns", value_name = "NAME")]
    pub(crate) allow_dns: Vec<String>,
    /// Allow peers whose leaf has this URI SAN (SPIFFE IDs; `*` matches one
    /// path segment); repeatable.
    #[arg(long = "allow-uri", value_name = "URI")]
    pub(crate) allow_uri: Vec<String>,
    /// Allow peers whose leaf's subject is this name (as `vigil verify`
    /// prints it, e.g. "CN=agent-1, O=Example"; compared as names, so
    /// spacing and case do not matter); repeatable.
    #[arg(long = "allow-subject", value_name = "DN")]
    pub(crate) allow_subject: Vec<String>,
    /// Allow peers whose leaf's public key (SubjectPublicKeyInfo) has this
    /// SHA-256, hex; repeatable.
    #[arg(long = "allow-spki-sha256", value_name = "HEX")]
    pub(crate) allow_spki_sha256: Vec<String>,
    /// Send a PROXY protocol header to the target first (v2: addresses,
    /// and the client certificate's SHA-256 and subject in TLVs).
    #[arg(long, value_name = "VERSION")]
    pub(crate) proxy_protocol: Option<String>,
    /// Serve the admin API here (healthz, readyz, metrics, connections
    /// read-only, events, deny).
    #[arg(long, env = "VIGIL_PROXY_ADMIN", value_name = "ADDR")]
    pub(crate) admin: Option<String>,
    /// Most connections at once, all listeners together [default: 100000].
    #[arg(long, env = "VIGIL_MAX_CONNECTIONS", value_name = "N")]
    pub(crate) max_connections: Option<u64>,
    /// Seconds a client has to complete its TLS handshake [default: 10].
    #[arg(long, env = "VIGIL_HANDSHAKE_TIMEOUT", value_name = "SECS")]
    pub(crate) handshake_timeout: Option<u64>,
    /// Close a connection after this many seconds without a byte either
    /// way; 0: never [default: 0].
    #[arg(long, env = "VIGIL_IDLE_TIMEOUT", value_name = "SECS")]
    pub(crate) idle_timeout: Option<u64>,

    /// Flags shared with `vigil serve` (data dir, anchors, policy, admin
    /// token, log level, fetch destinations, fleet mode).
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}
