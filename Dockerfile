# syntax=docker/dockerfile:1
# The Vigil sidecar: `vigil serve` as the entry point.
#
#   docker build -t vigil .
#   docker run -v vigil-data:/var/lib/vigil -v ./anchors:/etc/vigil:ro -p 127.0.0.1:8787:8787 \
#       -e VIGIL_API_TOKEN=... vigil --anchor /etc/vigil/root.pem
#
# Inside a container the loopback interface is the container's own, so the
# image listens on 0.0.0.0:8787 (VIGIL_LISTEN), and a non-loopback listen
# needs an API token: give VIGIL_API_TOKEN (as above) or mount a file and
# set VIGIL_API_TOKEN_FILE=/run/secrets/vigil-token. Without one `vigil
# serve` exits 2 (--insecure-no-auth would serve it open: don't). Every /v1
# route then needs `Authorization: Bearer <token>`; /healthz and /readyz
# stay open for the HEALTHCHECK. Still publish the port on the host's
# loopback unless other hosts must reach it. Settings are VIGIL_*
# variables, so `-e` overrides them and flags override both.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vigil-cli --bin vigil \
    && install -D -m 0755 target/release/vigil /out/vigil

FROM debian:bookworm-slim
# ca-certificates: CRL and OCSP URLs may be https.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid vigil --home-dir /var/lib/vigil \
       --shell /usr/sbin/nologin vigil \
    && install -d -o vigil -g vigil -m 0750 /var/lib/vigil
COPY --from=build /out/vigil /usr/local/bin/vigil
USER 10001:10001
ENV VIGIL_LISTEN=0.0.0.0:8787 \
    VIGIL_DATA_DIR=/var/lib/vigil \
    VIGIL_SIDECAR=http://127.0.0.1:8787
VOLUME ["/var/lib/vigil"]
EXPOSE 8787
# The probe is vigil itself (the slim image has no curl): /healthz answers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["vigil", "health", "--timeout", "2"]
ENTRYPOINT ["vigil", "serve"]
