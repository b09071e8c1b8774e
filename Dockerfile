# Build the one stayledger binary; every service of docker-compose.yml runs it with a subcommand.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p stayledger && cp target/release/stayledger /usr/local/bin/stayledger

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/stayledger stayledger \
    && mkdir -p /var/lib/stayledger && chown stayledger /var/lib/stayledger
COPY --from=build /usr/local/bin/stayledger /usr/local/bin/stayledger
USER stayledger
WORKDIR /var/lib/stayledger
ENTRYPOINT ["stayledger"]
