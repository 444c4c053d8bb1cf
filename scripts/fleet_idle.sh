#!/usr/bin/env bash
# Idle cost of fleet mode: CPU time and RSS of an idle `vigil serve` with
# --cluster (a local nats-server -js) next to one without, over SECS seconds.
# Usage: scripts/fleet_idle.sh [SECS]   (default 60; needs nats-server, a
# release build: cargo build --release -p vigil-cli -p pki-fixtures)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
export PATH="$PATH:/usr/sbin"
vigil=target/release/vigil
fixtures=target/release/pki-fixtures
[ -x "$vigil" ] && [ -x "$fixtures" ] || cargo build --release -q -p vigil-cli -p pki-fixtures
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
"$fixtures" generate --out "$dir/pki" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/nats" >/dev/null 2>&1 & pids+=($!)
sleep 1
start() { # name extra...
  local name=$1; shift
  "$vigil" serve --listen 127.0.0.1:0 --data-dir "$dir/$name" --anchor "$dir/pki/root.pem" \
    --revocation off --log-level warn "$@" >"$dir/$name.out" 2>"$dir/$name.err" & pids+=($!)
  echo $!
}
plain=$(start plain)
fleet=$(start fleet --cluster "nats://127.0.0.1:$port" --node-id idle)
sleep 3
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
p0=$(ticks "$plain"); f0=$(ticks "$fleet")
sleep "$secs"
p1=$(ticks "$plain"); f1=$(ticks "$fleet")
hz=$(getconf CLK_TCK)
echo "idle over ${secs}s: CPU ms without --cluster $(( (p1 - p0) * 1000 / hz )), with $(( (f1 - f0) * 1000 / hz ))"
echo "RSS KiB: without --cluster $(rss "$plain"), with $(rss "$fleet")"
