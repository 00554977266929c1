# The gateway image: one static-ish binary (glibc only; TLS through rustls/ring, the seed GIF
# compiled in) on distroless, running as a non-root numeric user with no shell.
#
#   docker build -t gateway:0.1.0 .
#   docker run --rm -p 8080:8080 -p 9090:9090 gateway:0.1.0 serve --endpoint ... --bucket ...
#
# Without registry access, scripts/image.sh builds this same file: it assembles the runtime base
# from Debian's packages and hands in a binary compiled on the machine (BINARY=prebuilt, below);
# the runtime stage, the one that ships, is the same either way.

# Where the binary comes from: `build` (compiled here, the default) or `prebuilt` (a context
# that holds only a `gateway` binary built on Debian 12, the runtime's glibc).
ARG BINARY=build

# Build stage: the toolchain the project pins (rust-version 1.95), on the same Debian release as
# the runtime image so the glibc versions match. No default features: the demo and its
# embedded S3 backend stay out of the production binary.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin gateway \
    && cp target/release/gateway /gateway

FROM scratch AS prebuilt
COPY gateway /gateway

FROM ${BINARY} AS binary

# Runtime stage: glibc, libgcc, CA certificates and a nonroot user; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=binary /gateway /usr/local/bin/gateway
# 65532 is distroless's "nonroot"; numeric, so runAsNonRoot can verify it.
USER 65532:65532
# Objects on 8080, /metrics /healthz /readyz on 9090.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["serve"]
