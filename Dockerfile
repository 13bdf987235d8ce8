# syntax=docker/dockerfile:1
# Multi-stage build: compile with the full toolchain, run on a slim image as a non-root user.

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin licensd && cp target/release/licensd /usr/local/bin/licensd

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/licensd --create-home licensd
COPY --from=build /usr/local/bin/licensd /usr/local/bin/licensd
COPY config /etc/licensd
USER licensd
WORKDIR /var/lib/licensd
ENV LICENSD_BIND=0.0.0.0:8080 \
    LICENSD_CONFIG=/etc/licensd/default.toml \
    LICENSD_MAIL_DIR=/var/lib/licensd/mail \
    LICENSD_LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["licensd"]
CMD ["serve"]
