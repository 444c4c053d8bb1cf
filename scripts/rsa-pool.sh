#!/usr/bin/env bash
# Regenerates pki-fixtures/keys/rsa-pool.pem: the RSA-2048 keys every RSA
# fixture certificate takes its key from (pki-fixtures/src/keys.rs). They are
# made ahead of time so that no Vigil crate, fixtures included, needs the
# `rsa` crate (RUSTSEC-2023-0071) or spends seconds generating keys.
# TEST MATERIAL ONLY: these private keys are public.
#
#   bash scripts/rsa-pool.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=pki-fixtures/keys/rsa-pool.pem
n=$(sed -n 's/^pub const RSA_POOL_SIZE: usize = \([0-9]*\);/\1/p' pki-fixtures/src/keys.rs)
tmp=$(mktemp)
for _ in $(seq 1 "$n"); do
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -outform PEM 2>/dev/null >> "$tmp"
done
mv "$tmp" "$out"
echo "wrote $n RSA-2048 PKCS#8 keys to $out"
