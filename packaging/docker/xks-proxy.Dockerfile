# xks-proxy: multi-stage build, small runtime image, non-root user.
# Build from the repository root:
#   docker build -f packaging/docker/xks-proxy.Dockerfile -t xks-proxy .
# For a PKCS#11 HSM, install its client library in the runtime stage (for
# SoftHSM2: apt-get install softhsm2) and point the backend's `module` at it.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p xks-proxy \
 && install -D -m 0755 target/release/xks-proxy /out/xks-proxy

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10002 xks \
 && useradd --system --uid 10002 --gid xks --home-dir /var/lib/xks-proxy --shell /usr/sbin/nologin xks \
 && install -d -o xks -g xks -m 0700 /var/lib/xks-proxy /var/log/xks-proxy
COPY --from=build /out/xks-proxy /usr/local/bin/xks-proxy
USER 10002:10002
WORKDIR /var/lib/xks-proxy
# 8443: the XKS API (TLS); 9465: Prometheus metrics (set [metrics] listen).
EXPOSE 8443 9465
# SIGHUP reloads credentials, certificates, rules and keys;
# SIGTERM drains in-flight requests and flushes the audit log.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/xks-proxy"]
CMD ["--config", "/etc/xks-proxy/config.toml"]
