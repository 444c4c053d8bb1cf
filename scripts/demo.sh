#!/usr/bin/env bash
# Vigil demo on built-in defaults: generate a fixture PKI, then verify a good
# and a revoked client chain with `vigil verify` and show both verdicts.
# Exits non-zero unless the good chain is accepted and the revoked one rejected.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-demo}

cargo build --quiet -p vigil-cli -p pki-fixtures
bin=target/debug
rm -rf "$out"
"$bin/pki-fixtures" generate --out "$out" --quiet

verify() {
  "$bin/vigil" verify --offline --anchor "$out/root.pem" --crl "$out/root.crl" --crl "$out/intermediate.crl" \
    --usage client "$@"
}

echo "== good client chain (client.chain.pem) =="
verify "$out/client.chain.pem" || { echo "demo: the good chain was rejected" >&2; exit 1; }
echo
echo "== revoked client chain (revoked-client.chain.pem) =="
if verify "$out/revoked-client.chain.pem"; then
  echo "demo: the revoked chain was accepted" >&2
  exit 1
fi
echo
echo "== the same revoked chain as JSON =="
verify --format json "$out/revoked-client.chain.pem" || true
