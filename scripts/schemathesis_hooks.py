"""Schemathesis hooks for scripts/schemathesis.sh: value generators for the
custom string formats /openapi.json uses where no regular expression can
describe what the server accepts (certificates, distinguished names, peer
names). Each generator yields only values the server must accept; the
certificates are the ones scripts/schemathesis.sh made for the run."""

import base64
import os

import schemathesis
from hypothesis import strategies as st

_DIR = os.environ["VIGIL_ST_DIR"]


def _read(name, mode="r"):
    with open(os.path.join(_DIR, name), mode) as f:
        return f.read()


_PEMS = [_read(n) for n in ("root.pem", "leaf.pem", "other.pem")]
_DERS = [base64.b64encode(_read(n, "rb")).decode() for n in ("leaf.der", "other.der")]
schemathesis.openapi.format("x509-certificate", st.sampled_from(_PEMS + _DERS))

_TYPES = ["CN", "O", "OU", "C", "L", "ST", "DC", "commonName", "2.5.4.3", "emailAddress"]
_VALUE = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 .@-]{0,30}\Z")
_ATV = st.builds(lambda t, v, sp: f"{t}{sp}={sp}{v}", st.sampled_from(_TYPES), _VALUE,
                 st.sampled_from(["", " "]))
schemathesis.openapi.format(
    "x509-name",
    st.builds(lambda atvs, sep: sep.join(atvs), st.lists(_ATV, min_size=1, max_size=5),
              st.sampled_from([",", ", ", ";", " , "])),
)

_LABEL = st.from_regex(r"\A[a-z]([a-z0-9-]{0,20}[a-z0-9])?\Z")
schemathesis.openapi.format(
    "peer-name",
    st.one_of(
        st.builds(lambda parts: ".".join(parts), st.lists(_LABEL, min_size=1, max_size=4)),
        st.ip_addresses().map(str),
    ),
)

# Label keys are at most 128 characters (handlers::MAX_LABEL_KEY). The
# document says so with `propertyNames`, which OpenAPI 3.0 does not have, so
# generators ignore it and send longer keys as "schema-valid": drop those.
_MAX_LABEL_KEY = 128


@schemathesis.hook
def filter_body(context, body):
    labels = body.get("labels") if isinstance(body, dict) else None
    if not isinstance(labels, dict):
        return True
    return all(len(k) <= _MAX_LABEL_KEY for k in labels)
