#!/usr/bin/env bash
# Load benchmark of `vigil serve` on 127.0.0.1 (bounded: a few fixed-length
# wrk runs and fixed connection counts; it stops by itself). Not part of
# `cargo test`. Prints a Markdown report; see the example's doc comment
# (crates/vigil-cli/examples/serve_load.rs) for what is measured.
#
#   bash scripts/serve-load.sh                 # defaults: 10 s runs, 10k/1k/100k
#   bash scripts/serve-load.sh --seconds 5 --memory-connections 20000
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is missing (apt-get install wrk)" >&2
    exit 1
  fi
fi

cargo build -q --release -p vigil-cli --bin vigil --example serve_load
exec target/release/examples/serve_load --vigil target/release/vigil "$@"
