#!/usr/bin/env bash
HS_SECONDS_ENV=$SECONDS # bash's SECONDS: the value from the environment, read first
# Performance comparison of `vigil proxy` with stunnel4 and HAProxy, all three
# terminating the same mutual TLS (ECDSA P-256 certificates from pki-fixtures,
# client certificate required and verified against the same root, TLS 1.3
# only) in front of the same plain TCP backend, everything on 127.0.0.1.
# Not part of `cargo test`. Prints a Markdown table; the raw JSON lines are
# kept in $WORK/results.jsonl (WORK is printed; KEEP=1 keeps it).
#
#   bash scripts/proxy_compare.sh
#   BYTES=268435456 SECONDS=5 bash scripts/proxy_compare.sh
#
# Environment:
#   BYTES=N        bytes per bulk run (default 1 GiB)
#   SECONDS=S      length of each handshake run (default 10)
#   REPS=N         repetitions of bulk and latency runs (median shown; default 5)
#   REQUESTS=N     round trips per latency run (default 10000)
#   CONCURRENCY=N  handshake workers (default 32)
#   CONNECTIONS=N  connections of the teardown test (default 1000)
#   KX=x25519|p256 key exchange the client offers (default x25519)
#   NO_BUILD=1     use the binaries already in target/release
#   KEEP=1         keep the work directory
#
# What is measured (see crates/vigil-cli/examples/proxy_load.rs):
#   bulk        one stream, 1 GiB, client -> backend sink ("up": the proxy
#               decrypts) and backend -> client ("down": the proxy encrypts),
#               each direction on its own: on two cores the generator, the
#               proxy and the backend share the CPU, and echoing both ways
#               would charge the generator's own TLS twice.
#   handshakes  new connections per second, full TLS 1.3 handshakes (the
#               client keeps no session), 1 byte each way, close.
#   latency     64-byte ping-pong on one connection. "pinned": generator,
#               proxy and backend all on CPU 1 (stable; what the proxy adds);
#               "unpinned": free scheduling (on this VM, a wake-up across
#               vCPUs costs 50-100 us and lands at random, so runs are
#               bimodal; the median of the runs is shown).
#   teardown    own PKI and responder, 1000 connections with distinct client
#               certificates, 10 % revoked; vigil: POST /v1/revocation/refresh
#               on the admin API; stunnel / HAProxy: the new CRL written to
#               their CRLfile / crl-file and a reload (SIGHUP / SIGUSR2 to the
#               master). Time from the refresh's return to both legs closed.
# stunnel and HAProxy also run a second instance with the CRL file
# (CRLfile / crl-file) for the handshake rate: vigil checks revocation on
# every handshake, the plain configurations do not.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BYTES=${BYTES:-1073741824}
if [ "${HS_SECONDS_ENV:-0}" -gt 0 ] 2>/dev/null; then HS_SECONDS=$HS_SECONDS_ENV; else HS_SECONDS=10; fi
REPS=${REPS:-5}
REQUESTS=${REQUESTS:-10000}
CONCURRENCY=${CONCURRENCY:-32}
CONNECTIONS=${CONNECTIONS:-1000}
KX=${KX:-x25519}

# ------------------------------------------------------------------ tools
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
HAPROXY=$(command -v haproxy || true)
missing=()
[ -n "$STUNNEL" ] || missing+=(stunnel4)
[ -n "$HAPROXY" ] || missing+=(haproxy)
command -v jq >/dev/null || missing+=(jq)
command -v taskset >/dev/null || missing+=(util-linux)
command -v ss >/dev/null || missing+=(iproute2)
command -v flock >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]}" >&2
  echo "install with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

# ------------------------------------------------------------------ build
if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "building (release) ..." >&2
  flock /tmp/vigil-cargo.lock cargo build -q --release -p vigil-cli -p pki-fixtures --bins --examples
fi
BIN=$ROOT/target/release
VIGIL=$BIN/vigil
FIXTURES=$BIN/pki-fixtures
LOAD=$BIN/examples/proxy_load
for b in "$VIGIL" "$FIXTURES" "$LOAD"; do
  [ -x "$b" ] || { echo "missing $b (build first)" >&2; exit 1; }
done

# ------------------------------------------------------------------ work dir, ports, cleanup
WORK=$(mktemp -d /tmp/proxy_compare.XXXXXX)
RESULTS=$WORK/results.jsonl
: > "$RESULTS"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
NPORTS=20
# Below the ephemeral range: the handshake runs use thousands of ephemeral
# ports, and the teardown backend binds its port late.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
for _ in $(seq 50); do
  BASE=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000 - NPORTS)))
  ok=1
  for i in $(seq 0 $((NPORTS - 1))); do port_free $((BASE + i)) || { ok=0; break; }; done
  [ $ok = 1 ] && break
done
[ $ok = 1 ] || { echo "no free port range found" >&2; exit 1; }
P_RESPONDER=$BASE
P_BACKEND=$((BASE + 1))
P_VIGIL=$((BASE + 2))
P_ADMIN=$((BASE + 3))
P_STUNNEL=$((BASE + 4))
P_HAPROXY=$((BASE + 5))
P_STUNNEL_CRL=$((BASE + 6))
P_HAPROXY_CRL=$((BASE + 7))
P_TD_BACKEND=$((BASE + 10))
P_TD_VIGIL=$((BASE + 11))
P_TD_ADMIN=$((BASE + 12))
P_TD_STUNNEL=$((BASE + 13))
P_TD_HAPROXY=$((BASE + 14))

wait_port() { # PORT WHAT PID
  for _ in $(seq 300); do
    port_free "$1" || return 0
    kill -0 "$3" 2>/dev/null || { echo "$2 exited; log:" >&2; cat "$WORK/$2.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$2 did not listen on $1" >&2; exit 1
}

start() { # NAME PORT CMD...
  local name=$1 port=$2; shift 2
  "$@" > "$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_${name//-/_}=$!"
  wait_port "$port" "$name" $!
}

# ------------------------------------------------------------------ PKI, backend, proxies
PKI=$WORK/pki
start responder $P_RESPONDER "$FIXTURES" serve --out "$PKI" --listen 127.0.0.1:$P_RESPONDER --alg p256
for _ in $(seq 100); do [ -s "$PKI/manifest.json" ] && break; sleep 0.1; done
cat "$PKI/server.chain.pem" "$PKI/server.key.pem" > "$PKI/combined.pem"
cat "$PKI/root.crl.pem" "$PKI/intermediate.crl.pem" > "$PKI/crl.pem"

start backend $P_BACKEND "$LOAD" backend --listen 127.0.0.1:$P_BACKEND

vigil_cmd() { # LISTEN TARGET ADMIN DIR
  echo "$VIGIL proxy --listen 127.0.0.1:$1 --target 127.0.0.1:$2 --cert $4/server.chain.pem --key $4/server.key.pem --anchor $4/root.pem --data-dir $4/vigil-data-$1 --admin 127.0.0.1:$3 --log-level warn"
}

stunnel_conf() { # FILE LISTEN TARGET DIR CRL(0/1)
  {
    echo "foreground = yes"
    echo "pid ="
    echo "debug = warning"
    echo "[mtls]"
    echo "accept = 127.0.0.1:$2"
    echo "connect = 127.0.0.1:$3"
    echo "cert = $4/server.chain.pem"
    echo "key = $4/server.key.pem"
    echo "CAfile = $4/root.pem"
    [ "$5" = 1 ] && echo "CRLfile = $4/crl.pem"
    echo "verifyChain = yes"
    echo "requireCert = yes"
    echo "sslVersionMin = TLSv1.3"
    echo "socket = l:TCP_NODELAY=1"
    echo "socket = r:TCP_NODELAY=1"
  } > "$1"
}

haproxy_conf() { # FILE LISTEN TARGET DIR CRL(0/1)
  local crl=""
  [ "$5" = 1 ] && crl="crl-file $4/crl.pem"
  cat > "$1" <<EOF
global
  nbthread 2
  maxconn 9000
  log stderr format short local0 warning
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend mtls
  bind 127.0.0.1:$2 ssl crt $4/combined.pem ca-file $4/root.pem $crl verify required ssl-min-ver TLSv1.3
  default_backend plain
backend plain
  server b1 127.0.0.1:$3
EOF
}

# vigil_cmd: the PKI files and the data directory under DIR.
# shellcheck disable=SC2046
start vigil $P_VIGIL $(vigil_cmd $P_VIGIL $P_BACKEND $P_ADMIN "$PKI")

stunnel_conf "$WORK/stunnel.conf" $P_STUNNEL $P_BACKEND "$PKI" 0
start stunnel $P_STUNNEL "$STUNNEL" "$WORK/stunnel.conf"
stunnel_conf "$WORK/stunnel-crl.conf" $P_STUNNEL_CRL $P_BACKEND "$PKI" 1
start stunnel-crl $P_STUNNEL_CRL "$STUNNEL" "$WORK/stunnel-crl.conf"
haproxy_conf "$WORK/haproxy.cfg" $P_HAPROXY $P_BACKEND "$PKI" 0
start haproxy $P_HAPROXY "$HAPROXY" -db -f "$WORK/haproxy.cfg"
haproxy_conf "$WORK/haproxy-crl.cfg" $P_HAPROXY_CRL $P_BACKEND "$PKI" 1
start haproxy-crl $P_HAPROXY_CRL "$HAPROXY" -db -f "$WORK/haproxy-crl.cfg"

CLIENT=(--cert "$PKI/client.chain.pem" --key "$PKI/client.key.pem" --ca "$PKI/root.pem" --kx "$KX")
# name port pid
TARGETS=("vigil $P_VIGIL $PID_vigil" "stunnel $P_STUNNEL $PID_stunnel" "haproxy $P_HAPROXY $PID_haproxy")
ALL_CPUS=0-$(($(nproc) - 1))

run() { # record one JSON line
  local line
  line=$("$@") || { echo "failed: $*" >&2; exit 1; }
  echo "$line" >> "$RESULTS"
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2
echo "work directory $WORK; versions: $("$STUNNEL" -version 2>&1 | grep -m1 '^stunnel'); $("$HAPROXY" -v | head -1)" >&2
start_time=$(date +%s)

# ------------------------------------------------------------------ bulk
echo "bulk: $REPS x {up,down} x 3 proxies, $BYTES bytes" >&2
for rep in $(seq "$REPS"); do
  for dir in up down; do
    for t in "${TARGETS[@]}"; do
      read -r name port pid <<< "$t"
      run "$LOAD" bulk --connect 127.0.0.1:$port "${CLIENT[@]}" --bytes "$BYTES" --direction $dir --label "$name" --pid "$pid"
    done
  done
done

# ------------------------------------------------------------------ handshakes
echo "handshakes: ${HS_SECONDS}s each, concurrency $CONCURRENCY" >&2
for t in "${TARGETS[@]}" "stunnel+crl $P_STUNNEL_CRL $PID_stunnel_crl" "haproxy+crl $P_HAPROXY_CRL $PID_haproxy_crl"; do
  read -r name port pid <<< "$t"
  run "$LOAD" handshakes --connect 127.0.0.1:$port "${CLIENT[@]}" --seconds "$HS_SECONDS" --concurrency "$CONCURRENCY" --label "$name" --pid "$pid"
done

# ------------------------------------------------------------------ latency
echo "latency: $REPS x $REQUESTS round trips, pinned to CPU 1 then unpinned" >&2
pin() { for p in "$@"; do taskset -a -p -c 1 "$p" >/dev/null; done; }
unpin() { for p in "$@"; do taskset -a -p -c "$ALL_CPUS" "$p" >/dev/null; done; }
for mode in pinned unpinned; do
  for rep in $(seq "$REPS"); do
    for t in "direct $P_BACKEND $PID_backend" "${TARGETS[@]}"; do
      read -r name port pid <<< "$t"
      if [ "$name" = direct ]; then args=(--plain); else args=("${CLIENT[@]}" --pid "$pid"); fi
      if [ $mode = pinned ]; then
        pin "$PID_backend" "$pid"
        run taskset -c 1 "$LOAD" latency --connect 127.0.0.1:$port "${args[@]}" --requests "$REQUESTS" --label "$name/$mode"
        unpin "$PID_backend" "$pid"
      else
        run "$LOAD" latency --connect 127.0.0.1:$port "${args[@]}" --requests "$REQUESTS" --label "$name/$mode"
      fi
    done
  done
done

# ------------------------------------------------------------------ teardown
echo "teardown: $CONNECTIONS connections, 10 % revoked, per proxy" >&2
TD=$WORK/td
mkdir -p "$TD"
run "$LOAD" teardown --label vigil --connect 127.0.0.1:$P_TD_VIGIL --backend 127.0.0.1:$P_TD_BACKEND \
  --dir "$TD/vigil" --connections "$CONNECTIONS" --certs "$CONNECTIONS" \
  --start "$(vigil_cmd $P_TD_VIGIL $P_TD_BACKEND $P_TD_ADMIN "$TD/vigil")" \
  --admin http://127.0.0.1:$P_TD_ADMIN
stunnel_conf "$TD/stunnel.conf" $P_TD_STUNNEL $P_TD_BACKEND "$TD/stunnel" 1
run "$LOAD" teardown --label stunnel --connect 127.0.0.1:$P_TD_STUNNEL --backend 127.0.0.1:$P_TD_BACKEND \
  --dir "$TD/stunnel" --connections "$CONNECTIONS" --certs "$CONNECTIONS" \
  --start "$STUNNEL $TD/stunnel.conf" --reload 'kill -HUP $PROXY_PID'
haproxy_conf "$TD/haproxy.cfg" $P_TD_HAPROXY $P_TD_BACKEND "$TD/haproxy" 1
run "$LOAD" teardown --label haproxy --connect 127.0.0.1:$P_TD_HAPROXY --backend 127.0.0.1:$P_TD_BACKEND \
  --dir "$TD/haproxy" --connections "$CONNECTIONS" --certs "$CONNECTIONS" \
  --start "$HAPROXY -W -db -f $TD/haproxy.cfg" --reload 'kill -USR2 $PROXY_PID'

echo "measured in $(( $(date +%s) - start_time )) s" >&2

# ------------------------------------------------------------------ table
jq -r -s --arg bytes "$BYTES" --arg hs "$HS_SECONDS" --arg reps "$REPS" --arg conc "$CONCURRENCY" \
  --arg requests "$REQUESTS" --arg conns "$CONNECTIONS" '
def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
def r1: if . == null then "n/a" else (. * 10 | round / 10 | tostring) end;
def r0: if . == null then "n/a" else (. | round | tostring) end;
def r2: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
def ratio($a; $b): if $a == null or $b == null or $b == 0 then null else $a / $b end;
def met($x; $t): if $x == null then "n/a" elif $x >= $t then "met" else "NOT met" end;
. as $all
| def sel($test; $lb): [$all[] | select(.test == $test and .label == $lb)];
  def bulk($lb; $dir): [sel("bulk"; $lb)[] | select(.direction == $dir) | .mb_per_s] | median;
  def bulkcpu($lb; $dir): [sel("bulk"; $lb)[] | select(.direction == $dir) | .proxy_cpu_s_per_gb] | median;
  def hs($lb): sel("handshakes"; $lb)[0];
  def lat($lb; $q): [sel("latency"; $lb)[] | .rtt_us[$q]] | median;
  def latbest($lb): [sel("latency"; $lb)[] | .rtt_us.p50] | min;
  def latcpu($lb): [sel("latency"; $lb)[] | .proxy_cpu_us_per_rtt | select(. != null)] | median;
  def td($lb): sel("teardown"; $lb)[0];
  (["up", "down"] | map(. as $d | {key: $d, value: ([bulk("stunnel"; $d), bulk("haproxy"; $d)] | max)}) | from_entries) as $best
| (hs("stunnel").per_s) as $st_hs
| [
  "## vigil proxy vs stunnel vs HAProxy (mTLS termination, TLS 1.3, ECDSA P-256, 127.0.0.1, \($all | map(select(.tls.kx != null)) | .[0].tls.suite // "?") / \($all | map(select(.tls.kx != null)) | .[0].tls.kx // "?"))",
  "",
  "| metric | vigil | stunnel | HAProxy | direct | vigil ratio | target | |",
  "|---|---|---|---|---|---|---|---|",
  ( ["up", "down"][] as $d
    | (ratio(bulk("vigil"; $d); $best[$d])) as $q
    | "| bulk \($d), 1 stream, MB/s (median of \($reps) x \($bytes | tonumber / 1048576 | floor) MiB) | \(bulk("vigil"; $d) | r0) | \(bulk("stunnel"; $d) | r0) | \(bulk("haproxy"; $d) | r0) | | \($q | r2)x faster of stunnel/HAProxy | >= 0.9x | \(met($q; 0.9)) |",
      "| bulk \($d): proxy CPU s per GB | \(bulkcpu("vigil"; $d) | r2) | \(bulkcpu("stunnel"; $d) | r2) | \(bulkcpu("haproxy"; $d) | r2) | | | | |" ),
  ( (ratio(hs("vigil").per_s; $st_hs)) as $q
    | "| handshakes/s (\($hs) s, \($conc) workers, no resumption) | \(hs("vigil").per_s | r0) | \($st_hs | r0) | \(hs("haproxy").per_s | r0) | | \($q | r2)x stunnel | >= 1.0x | \(met($q; 1.0)) |" ),
  "| handshakes/s with the CRL file (stunnel CRLfile, HAProxy crl-file) | \(hs("vigil").per_s | r0) (always checks) | \(hs("stunnel+crl").per_s | r0) | \(hs("haproxy+crl").per_s | r0) | | \(ratio(hs("vigil").per_s; hs("stunnel+crl").per_s) | r2)x stunnel+CRL | | |",
  "| handshake: proxy CPU us per connection | \(hs("vigil").proxy_cpu_us_per_handshake | r0) | \(hs("stunnel").proxy_cpu_us_per_handshake | r0) | \(hs("haproxy").proxy_cpu_us_per_handshake | r0) | | | | |",
  "| handshake p50 / p99 ms (connect to 1-byte echo, under load) | \(hs("vigil").connect_ms.p50 | r1) / \(hs("vigil").connect_ms.p99 | r1) | \(hs("stunnel").connect_ms.p50 | r1) / \(hs("stunnel").connect_ms.p99 | r1) | \(hs("haproxy").connect_ms.p50 | r1) / \(hs("haproxy").connect_ms.p99 | r1) | | | | |",
  "| handshake errors | \(hs("vigil").errors) | \(hs("stunnel").errors) | \(hs("haproxy").errors) | | | | |",
  ( ["pinned", "unpinned"][] as $m
    | "| latency 64 B RTT p50 / p99 us (best p50), \($m) (median of \($reps) x \($requests)) | \(lat("vigil/\($m)"; "p50") | r1) / \(lat("vigil/\($m)"; "p99") | r1) (\(latbest("vigil/\($m)") | r1)) | \(lat("stunnel/\($m)"; "p50") | r1) / \(lat("stunnel/\($m)"; "p99") | r1) (\(latbest("stunnel/\($m)") | r1)) | \(lat("haproxy/\($m)"; "p50") | r1) / \(lat("haproxy/\($m)"; "p99") | r1) (\(latbest("haproxy/\($m)") | r1)) | \(lat("direct/\($m)"; "p50") | r1) / \(lat("direct/\($m)"; "p99") | r1) (\(latbest("direct/\($m)") | r1)) | | report | |" ),
  "| latency: proxy CPU us per round trip (pinned) | \(latcpu("vigil/pinned") | r1) | \(latcpu("stunnel/pinned") | r1) | \(latcpu("haproxy/pinned") | r1) | | | | |",
  ( td("vigil") as $v | td("stunnel") as $s | td("haproxy") as $h
    | "| teardown (\($conns) conns, \($v.revoked_connections) revoked): both legs closed / not closed | \($v.both_closed) / \($v.not_closed) | \($s.both_closed) / \($s.not_closed) | \($h.both_closed) / \($h.not_closed) | | | all closed | \(if $v.not_closed == 0 then "met" else "NOT met" end) |",
      "| teardown: both legs closed after the refresh returned, p50 / p99 / max ms | \($v.both_legs_after_refresh_ms.p50 | r1) / \($v.both_legs_after_refresh_ms.p99 | r1) / \($v.both_legs_after_refresh_ms.max | r1) | never | never | | | p99 <= 100 ms | \(if ($v.both_legs_after_refresh_ms.p99 // 1e9) <= 100 and $v.not_closed == 0 then "met" else "NOT met" end) |",
      "| teardown: after the refresh started / after the CRL was published, p99 ms | \($v.both_legs_after_refresh_start_ms.p99 | r1) / \($v.both_legs_after_publication_ms.p99 | r1) | | | | | | |",
      "| handshakes with \($conns) distinct client certs (teardown setup, CRL checked by all): conn/s; proxy CPU us per conn | \($v.setup_per_s | r0); \($v.setup_proxy_cpu_us_per_connection | r0) | \($s.setup_per_s | r0); \($s.setup_proxy_cpu_us_per_connection | r0) | \($h.setup_per_s | r0); \($h.setup_proxy_cpu_us_per_connection | r0) | | | | |",
      "| teardown: refresh (vigil: admin API call; others: reload signal) ms | \($v.refresh_ms | r1) | \($s.refresh_ms | r1) | \($h.refresh_ms | r1) | | | | |",
      "| teardown: unrevoked closed / still echoing | \($v.unrevoked_closed) / \($v.unrevoked_ping_ok) of \($v.unrevoked_pinged) | \($s.unrevoked_closed) / \($s.unrevoked_ping_ok) of \($s.unrevoked_pinged) | \($h.unrevoked_closed) / \($h.unrevoked_ping_ok) of \($h.unrevoked_pinged) | | | 0 closed | \(if $v.unrevoked_closed == 0 then "met" else "NOT met" end) |",
      "| teardown: new handshake with a revoked cert refused / good cert accepted | \($v.new_revoked_refused) / \($v.new_good_accepted) | \($s.new_revoked_refused) / \($s.new_good_accepted) | \($h.new_revoked_refused) / \($h.new_good_accepted) | | | | |" ),
  "",
  "Negative teardown times: the connection closed before the refresh call returned (the teardown runs as the refresh applies the new data)."
] | .[]
' "$RESULTS"
echo
echo "raw results: $RESULTS$( [ "${KEEP:-0}" = 1 ] || echo ' (removed on exit; KEEP=1 keeps them)')"
