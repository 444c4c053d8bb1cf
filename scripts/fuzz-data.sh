#!/usr/bin/env bash
# Regenerates fuzz/data/ (the fixture PKI the fuzz targets verify against)
# and the DER/PEM seeds of fuzz/corpus/ derived from it. TEST MATERIAL ONLY:
# the keys are thrown away with the temporary directory.
#
#   bash scripts/fuzz-data.sh
#
# The PKI comes from pki-fixtures (P-256); the OCSP responses from
# `openssl ocsp` acting as the intermediate CA's responder. fuzz/data/now
# holds the instant (Unix seconds) the targets verify at: a minute after
# the last response was signed, when every certificate, CRL and response is
# current.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo run -q -p pki-fixtures -- generate --out "$work" --quiet
data=fuzz/data
mkdir -p "$data"
for f in root.der intermediate.der client.der revoked-client.der root.crl intermediate.crl; do
  cp "$work/$f" "$data/$f"
done

# RFC 6960 responses for client (good) and revoked-client (revoked), alone
# and together, signed by the intermediate CA itself.
(
  cd "$work"
  line() { # status cert-pem [revocation]
    local serial subject expiry
    serial=$(openssl x509 -in "$2" -noout -serial | cut -d= -f2)
    subject=$(openssl x509 -in "$2" -noout -subject -nameopt compat | sed 's/^subject=//')
    expiry=$(date -u -d "$(openssl x509 -in "$2" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
    printf '%s\t%s\t%s\t%s\tunknown\t%s\n' "$1" "$expiry" "${3:-}" "$serial" "$subject"
  }
  { line V client.pem; line R revoked-client.pem "$(date -u -d '-1 day' +%y%m%d%H%M%SZ),keyCompromise"; } > index.txt
  openssl ocsp -issuer intermediate.pem -cert client.pem -no_nonce -reqout good.req
  openssl ocsp -issuer intermediate.pem -cert revoked-client.pem -no_nonce -reqout revoked.req
  openssl ocsp -issuer intermediate.pem -cert client.pem -cert revoked-client.pem -reqout both.req
  for r in good revoked both; do
    openssl ocsp -index index.txt -rsigner intermediate.pem -rkey intermediate.key.pem \
      -CA intermediate.pem -reqin "$r.req" -respout "$r.ocsp" -ndays 7 >/dev/null
  done
)
cp "$work/good.ocsp" "$work/revoked.ocsp" "$work/both.ocsp" "$data/"
echo $(( $(date -u +%s) + 60 )) > "$data/now"
echo "wrote $data (now $(cat "$data/now")); rebuild the fuzz targets and refresh the seeds: bash scripts/fuzz-seeds.sh"
