# kms-core: multi-stage build, small runtime image, non-root user.
# Build from the repository root:
#   docker build -f packaging/docker/kms-core.Dockerfile -t kms-core .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kms-core \
 && install -D -m 0755 target/release/kms-core /out/kms-core

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kms \
 && useradd --system --uid 10001 --gid kms --home-dir /var/lib/kms --shell /usr/sbin/nologin kms \
 && install -d -o kms -g kms -m 0700 /var/lib/kms /var/log/kms
COPY --from=build /out/kms-core /usr/local/bin/kms-core
USER 10001:10001
WORKDIR /var/lib/kms
# 4566: the KMS API; 9464: Prometheus metrics (keep it off public networks).
EXPOSE 4566 9464
# bash, not sh: /dev/tcp is a bash feature (dash has none).
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/4566 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200' <&3"]
# SIGTERM: stop accepting, finish in-flight requests, flush the audit log.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kms-core"]
CMD ["--listen", "0.0.0.0:4566", "--data-dir", "/var/lib/kms", \
     "--credentials", "/etc/kms/credentials.toml", \
     "--audit-log", "/var/log/kms/audit.log", \
     "--metrics-listen", "0.0.0.0:9464", "--log-format", "json"]
