# syntax=docker/dockerfile:1.7
#
# One image, six binaries: auth-svc, tracker-svc, billing-svc, analytics-svc,
# web-svc and the popug CLI in /usr/local/bin, plus the built web app in
# /app/web (what web-svc serves). Each Kubernetes Deployment picks its
# binary with `command`, so the image sets no ENTRYPOINT.
#
#   docker build -t popug:dev .
#   docker run --rm popug:dev /usr/local/bin/popug --help

# Keep in step with `rust-version` in Cargo.toml (edition 2024 needs it).
ARG RUST_VERSION=1.95

# The web app: its client generated from proto/ by the npm-installed buf and
# protoc-gen-es (no network beyond npm), type-checked and bundled.
FROM node:20-bookworm AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY buf.yaml /src/
COPY proto /src/proto
COPY web/ ./
RUN npm run build

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
# protobuf is compiled by protox (pure Rust), so no protoc; ring only needs the
# C compiler the image already has.
COPY . .
# The target directory is a cache mount, so the binaries are copied out in the
# same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p auth-svc -p tracker-svc -p billing-svc -p analytics-svc -p web-svc -p popug \
 && mkdir -p /out/bin /out/app/var/mail \
 && cp target/release/auth-svc target/release/tracker-svc \
       target/release/billing-svc target/release/analytics-svc \
       target/release/web-svc target/release/popug /out/bin/

# glibc + libgcc + CA certificates, no shell; bookworm-based like the builder.
FROM gcr.io/distroless/cc-debian12 AS runtime
COPY --from=builder /out/bin/ /usr/local/bin/
# /app/var/mail is the default mail directory, writable for plain `docker run`;
# Kubernetes mounts an emptyDir instead (the root filesystem is read-only).
COPY --from=builder --chown=10001:10001 /out/app /app
COPY --from=web /src/web/dist /app/web
WORKDIR /app
USER 10001:10001
EXPOSE 50051 50052 50053 50054 8080 9090
