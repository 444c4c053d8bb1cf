#!/usr/bin/env python3
"""Writes the committed seed corpora fuzz/corpus/<target>/ from fuzz/data/
(made by scripts/fuzz-data.sh) and a few PKITS CRLs (tests/data/pkits).

    python3 scripts/fuzz-seeds.py

The multi-part targets (verify, sidecar) read records
[kind: u8][len: u16 big-endian][bytes] (fuzz/src/lib.rs `records`).
"""
import base64
import hashlib
import json
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "fuzz", "data")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
PKITS = os.path.join(ROOT, "tests", "data", "pkits", "crls")
# PKITS CRLs that exercise distinct CRL features (delta, IDP, indirect,
# reasons, entry extensions, critical extensions, bad encodings).
PKITS_CRLS = [
    "deltaCRLCA1CRL.crl", "deltaCRLCA1deltaCRL.crl", "indirectCRLCA1CRL.crl",
    "indirectCRLCA3cRLIssuerCRL.crl", "distributionPoint1CACRL.crl",
    "onlySomeReasonsCA1compromiseCRL.crl", "onlyContainsUserCertsCACRL.crl",
    "UnknownCRLExtensionCACRL.crl", "UnknownCRLEntryExtensionCACRL.crl",
    "BadCRLSignatureCACRL.crl", "RevokedsubCACRL.crl", "TwoCRLsCAGoodCRL.crl",
]


def read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def pem(label, der):
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def records(*parts):
    out = b""
    for kind, body in parts:
        out += bytes([kind]) + struct.pack(">H", len(body)) + body
    return out


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, body in seeds:
        with open(os.path.join(d, name), "wb") as f:
            f.write(body)


root, inter = read("root.der"), read("intermediate.der")
client, revoked = read("client.der"), read("revoked-client.der")
root_crl, inter_crl = read("root.crl"), read("intermediate.crl")
good, rev, both = read("good.ocsp"), read("revoked.ocsp"), read("both.ocsp")
chain_pem = (pem("CERTIFICATE", client) + pem("CERTIFICATE", inter)).encode()

pkits = []
for name in PKITS_CRLS:
    path = os.path.join(PKITS, name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            pkits.append(("pkits-" + name, f.read()))

write("crl", [("root.crl", root_crl), ("intermediate.crl", inter_crl)] + pkits)
write("ocsp", [("good.ocsp", good), ("revoked.ocsp", rev), ("both.ocsp", both)])
write("certificates", [
    ("client.der", client), ("intermediate.der", inter), ("root.der", root),
    ("chain.pem", chain_pem), ("intermediate.crl.pem", pem("X509 CRL", inter_crl).encode()),
])
knobs = lambda k: (3, bytes([k]))
write("verify", [
    ("client-crls", records((0, client), (0, inter), (1, root_crl), (1, inter_crl), knobs(0))),
    ("client-ocsp-prefer", records((0, client), (0, inter), (2, good), knobs(1))),
    ("client-pem-crl-pem", records((0, chain_pem), (1, pem("X509 CRL", inter_crl).encode()),
                                   (1, root_crl), knobs(0x20))),
    ("revoked-crls", records((0, revoked), (0, inter), (1, root_crl), (1, inter_crl), knobs(0))),
    ("revoked-ocsp", records((0, revoked), (0, inter), (2, both), (1, root_crl), knobs(4))),
    ("client-off-server", records((0, client), (0, inter), knobs(2 | 8))),
])


def b64(der):
    return base64.b64encode(der).decode()


verify_body = json.dumps({"chain": [pem("CERTIFICATE", client), b64(inter)],
                          "usage": "client", "name": None}).encode()
conn_body = json.dumps({"chain": [b64(client), b64(inter)], "usage": "client",
                        "labels": {"pod": "a", "ns": "b"}, "lease_secs": 60}).encode()
serial = "5" * 32
deny_serial = json.dumps({"issuer_serial": {"issuer": "O=Vigil Test PKI, CN=Vigil Test Intermediate CA",
                                            "serial": serial},
                          "reason": "fuzz", "expires": "2030-01-31T12:00:00Z"}).encode()
deny_sha = json.dumps({"cert_sha256": hashlib.sha256(client).hexdigest(), "reason": "fuzz",
                       "expires": None}).encode()
deny_spki = json.dumps({"spki_sha256": "ab" * 32, "reason": "fuzz", "expires": 1900000000}).encode()
write("sidecar", [
    ("verify", records((0, verify_body))),
    ("connect-list-delete", records((1, conn_body), (6, b"limit=10&label=pod%3Da"),
                                    (7, b"0123456789abcdef0123456789abcdef"))),
    ("renew", records((2, b"0123456789abcdef0123456789abcdef\n" + b'{"lease_secs": 120}'))),
    ("refresh", records((3, b"{}"), (3, json.dumps({"url": "http://127.0.0.1:9/x.crl"}).encode()))),
    ("deny-lift", records((4, deny_serial), (5, deny_serial))),
    ("deny-sha", records((4, deny_sha), (4, deny_spki), (5, deny_spki))),
])
print("seeds written to", os.path.relpath(CORPUS))
