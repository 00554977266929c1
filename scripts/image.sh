#!/usr/bin/env bash
# Builds the production container image from the repository's Dockerfile, on a machine that may
# have no registry access, and tags it gateway:dev.
#
#   scripts/image.sh                      # a release binary built here, image gateway:dev
#   scripts/image.sh --binary PATH        # this binary (built on Debian 12) instead
#   IMAGE=gateway:test scripts/image.sh --binary target/debug/gateway
#
# Online, `docker build .` compiles the binary in the Dockerfile's build stage. Offline, neither
# rust:1.95-slim-bookworm nor distroless can be pulled, so this script:
#   - assembles the runtime base, gcr.io/distroless/cc-debian12:nonroot, from the Debian packages
#     distroless ships (libc6, libgcc-s1, ca-certificates, tzdata, netbase, base-files), with the
#     nonroot user 65532 and the CA bundle, and tags it with that name, unless an image of that
#     name is already there (pulled while online);
#   - hands the build a binary compiled on this machine (Debian 12, so the runtime's glibc)
#     through the Dockerfile's `prebuilt` stage: the runtime stage, the one that ships, is the
#     same as in an online build.
# It starts dockerd when none answers and stops it when done (only one it started; KEEP_DOCKERD=1
# keeps it). It writes target/image/: the image's file list and CycloneDX SBOMs made offline with
# trivy when it is installed (scripts/deploy-tools.sh): the image's packages, the binary's crates.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/need.sh
. scripts/need.sh

IMAGE="${IMAGE:-gateway:dev}"
BASE="gcr.io/distroless/cc-debian12:nonroot"
OUT="$PWD/target/image"
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        *) echo "image.sh: unknown argument $1: give --binary PATH or nothing" >&2; exit 2 ;;
    esac
done

need dpkg-deb dpkg
with_dockerd "$OUT/dockerd.log"

# The runtime base, as distroless's cc-debian12:nonroot holds it.
if ! $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
    echo "image.sh: assembling $BASE from Debian packages (no registry needed)" >&2
    work=$(mktemp -d)
    mkdir -p "$work/debs" "$work/root"
    packages=(libc6 libgcc-s1 ca-certificates tzdata netbase base-files)
    if ! (cd "$work/debs" && apt-get download -q "${packages[@]}" >/dev/null 2>&1); then
        apt-get update -qq >/dev/null
        (cd "$work/debs" && apt-get download -q "${packages[@]}" >/dev/null)
    fi
    root="$work/root"
    mkdir -p "$root/var/lib/dpkg/status.d"
    for deb in "$work"/debs/*.deb; do
        dpkg-deb -x "$deb" "$root"
        # What scanners read to list the image's packages, as distroless writes it.
        dpkg-deb -f "$deb" >"$root/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"
    done
    # No maintainer script runs: build the CA bundle, and drop the one shell script.
    mkdir -p "$root/etc/ssl/certs"
    find "$root/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat >"$root/etc/ssl/certs/ca-certificates.crt"
    rm -f "$root/usr/sbin/update-ca-certificates"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
    # Without it glibc asks DNS before /etc/hosts, and `localhost` may not resolve.
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
    mkdir -p "$root/home/nonroot" "$root/tmp" "$root/root"
    chmod 0700 "$root/home/nonroot" "$root/root"
    chmod 1777 "$root/tmp"
    chown 65532:65532 "$root/home/nonroot"
    tar --sort=name --mtime=@0 --numeric-owner -C "$root" -c . \
        | $DOCKER import -c 'USER 65532:65532' -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$BASE" >/dev/null
    rm -rf "$work"
fi

# The binary: given, or a release build without default features (as the Dockerfile builds it).
if [ -z "$binary" ]; then
    cargo build --release --locked --no-default-features --bin gateway
    binary="${CARGO_TARGET_DIR:-target}/release/gateway"
fi
[ -x "$binary" ] || { echo "image.sh: --binary $binary is not an executable file" >&2; exit 2; }
context=$(mktemp -d)
cp "$binary" "$context/gateway"
# A release build is stripped already; a debug one given with --binary loses its debug info.
if command -v strip >/dev/null 2>&1; then strip --strip-debug "$context/gateway"; fi
$DOCKER build -q -f Dockerfile --build-arg BINARY=prebuilt -t "$IMAGE" "$context" >/dev/null
rm -rf "$context"

# What went in: the file list, and an SBOM made offline.
mkdir -p "$OUT"
cid=$($DOCKER create "$IMAGE")
$DOCKER export "$cid" | tar -t | sort >"$OUT/files.txt"
$DOCKER rm "$cid" >/dev/null
if command -v trivy >/dev/null 2>&1; then
    $DOCKER save "$IMAGE" -o "$OUT/image.tar"
    TRIVY_CACHE_DIR="${TRIVY_CACHE_DIR:-$OUT/trivy-cache}" trivy image --quiet --skip-db-update --offline-scan \
        --format cyclonedx --input "$OUT/image.tar" --output "$OUT/sbom.cdx.json"
    rm -f "$OUT/image.tar"
    # The binary's crates: what Cargo.lock pins (the build is --locked).
    TRIVY_CACHE_DIR="${TRIVY_CACHE_DIR:-$OUT/trivy-cache}" trivy fs --quiet --skip-db-update --offline-scan \
        --format cyclonedx --output "$OUT/sbom-crates.cdx.json" Cargo.lock
fi
size=$($DOCKER image inspect --format '{{.Size}}' "$IMAGE")
echo "image.sh: built $IMAGE ($((size / 1000000)) MB); files in target/image/files.txt"
