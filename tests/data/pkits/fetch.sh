#!/bin/sh
# Regenerates certs/ and crls/ in this folder from the NIST PKITS data shipped in the
# PyPI package cryptography-vectors 50.0.2 (path x509/PKITS_data). Only the files named
# in pkits.tsv (plus the trust anchor certificate and its CRL) are copied.
# Usage: sh fetch.sh            (downloads the wheel with pip)
#        WHEEL=/path/to/cryptography_vectors-50.0.2-py3-none-any.whl sh fetch.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=50.0.2
sha256=51641f03a3eb4edbe9fb68e3a3574d25f86aa502d06391fffa886330d02778a0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "${WHEEL:-}" ]; then
    cp "$WHEEL" "$tmp/"
else
    pip download --no-deps --only-binary :all: --dest "$tmp" "cryptography-vectors==$version"
fi
whl="$tmp/cryptography_vectors-$version-py3-none-any.whl"
echo "$sha256  $whl" | sha256sum -c -
unzip -q "$whl" 'cryptography_vectors/x509/PKITS_data/certs/*' \
    'cryptography_vectors/x509/PKITS_data/crls/*' -d "$tmp/x"
src="$tmp/x/cryptography_vectors/x509/PKITS_data"

rm -rf "$here/certs" "$here/crls"
mkdir -p "$here/certs" "$here/crls"
rows() { grep -v '^#' "$here/pkits.tsv" | cut -f"$1" | tr ',' '\n' | grep -v '^$'; }
{ echo TrustAnchorRootCertificate.crt; rows 4; rows 5; } | sort -u |
    while read -r f; do cp "$src/certs/$f" "$here/certs/$f"; done
{ echo TrustAnchorRootCRL.crl; rows 6; } | sort -u |
    while read -r f; do cp "$src/crls/$f" "$here/crls/$f"; done
echo "copied $(ls "$here/certs" | wc -l) certificates and $(ls "$here/crls" | wc -l) CRLs"
