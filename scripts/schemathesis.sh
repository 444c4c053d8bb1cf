#!/usr/bin/env bash
# Runs schemathesis (PyPI) with every check against a real `vigil serve` on
# 127.0.0.1 with a token: /openapi.json must state exactly what the server
# accepts and answers. Exits non-zero on any finding.
#
#   scripts/schemathesis.sh [PATH-TO-vigil] [MAX-EXAMPLES] [MAX-SECONDS]
#
# Without a binary, builds the debug one (under /tmp/vigil-cargo.lock when
# flock exists). Needs openssl and schemathesis (`pip install schemathesis`).
set -euo pipefail
cd "$(dirname "$0")/.."

vigil=${1:-}
examples=${2:-40}
seconds=${3:-150}
if [ -z "$vigil" ]; then
  if command -v flock >/dev/null 2>&1; then
    flock /tmp/vigil-cargo.lock cargo build --quiet -p vigil-cli
  else
    cargo build --quiet -p vigil-cli
  fi
  vigil=target/debug/vigil
fi
st=$(command -v schemathesis || command -v st || echo "$HOME/.local/bin/schemathesis")
[ -x "$st" ] || { echo "schemathesis is not installed (pip install schemathesis)" >&2; exit 2; }

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Certificates the generators draw from: a root, a leaf under it, and an
# unrelated self-signed one (verdicts accepted or rejected: 200 for
# /v1/verify, 201 or 403 for /v1/connections).
cd "$work"
ec() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
ec root.key; ec leaf.key; ec other.key
openssl req -x509 -new -key root.key -out root.pem -days 30 -subj "/CN=Schemathesis Root/O=Vigil" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -key leaf.key -out leaf.csr -subj "/CN=client.vigil.test" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=DNS:client.vigil.test\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA root.pem -CAkey root.key -CAcreateserial -out leaf.pem -days 30 \
  -extfile leaf.ext 2>/dev/null
openssl req -x509 -new -key other.key -out other.pem -days 30 -subj "/CN=Someone Else" 2>/dev/null
openssl x509 -in leaf.pem -outform DER -out leaf.der
openssl x509 -in other.pem -outform DER -out other.der
head -c 24 /dev/urandom | base64 | tr -d '/+=' > token
cd - >/dev/null

# --revocation off: the leaf registers (201), so the operations on a
# connection id are reached through the document's links.
"$vigil" serve --listen 127.0.0.1:0 --data-dir "$work/data" --anchor "$work/root.pem" \
  --api-token-file "$work/token" --revocation off --log-level warn >"$work/serve.out" 2>"$work/serve.err" &
server=$!
base=""
for _ in $(seq 1 300); do
  base=$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "vigil serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
echo "vigil serve at $base; schemathesis: --checks all, $examples examples per operation, ${seconds}s at most"

status=0
VIGIL_ST_DIR="$work" SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$PWD/scripts" \
  "$st" run "$base/openapi.json" \
    --checks all \
    --header "Authorization: Bearer $(cat "$work/token")" \
    --max-examples "$examples" \
    --max-time "$seconds" \
    --request-timeout 5 \
    --seed 1 \
    --generation-database none \
    --no-color \
    --report-dir "$work/report" || status=$?
if ! kill -0 "$server" 2>/dev/null; then
  echo "vigil serve died during the run" >&2
  cat "$work/serve.err" >&2
  status=1
fi
exit "$status"
