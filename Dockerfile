# The one stayledger binary; every service of docker-compose.yml runs it with a subcommand
# (command-api, query-api, projector, saga, payment-sandbox; or serve for everything in one).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p stayledger \
    && cp target/release/stayledger /usr/local/bin/stayledger

FROM debian:bookworm-slim
# curl: the compose health checks call /healthz and /readyz with it.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/stayledger stayledger \
    && mkdir -p /var/lib/stayledger && chown stayledger /var/lib/stayledger
COPY --from=build /usr/local/bin/stayledger /usr/local/bin/stayledger
USER stayledger
WORKDIR /var/lib/stayledger
ENV STAYLEDGER_DATA_DIR=/var/lib/stayledger
# command-api, query-api, projector, saga, payment-sandbox (serve defaults to 8080).
EXPOSE 8081 8082 8083 8084 8090
# Every service finishes its in-flight requests on SIGTERM (docker stop), then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["stayledger"]
CMD ["--help"]
