#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, then runs them.
#
#   scripts/test.sh            # everything: the Rust tests, then scripts/check-deploy.sh
#   scripts/test.sh seed       # only Rust tests whose name contains "seed" (passed to cargo test)
#
# The Rust tests start their own S3 backend (s3s-fs over mTLS) and gateways on loopback ports;
# nothing else has to be running. scripts/check-deploy.sh checks helm/ and terraform/ (helm
# lint and template, Kubernetes schemas, trivy, tests/deploy/, terraform test) and installs its
# own tools. A missing tool is installed here, or the run fails saying
# what to install: no test skips silently.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/need.sh
. scripts/need.sh

need cargo cargo
need kill procps
# The metrics test starts Debian's Prometheus and scrapes the admin port (tests/integration/ops.rs).
[ -n "${PROMETHEUS:-}" ] || need prometheus prometheus
# The browser test drives Debian's Chromium headless (tests/integration/browser.rs).
if [ -z "${CHROMIUM:-}" ]; then
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need chromium chromium
fi

# The upload tests use boto3 at its defaults (aws-chunked with checksum trailers), in a venv of
# their own (tests/integration/uploads.rs).
if [ -z "${BOTO3_PYTHON:-}" ]; then
    pip_venv "$PWD/target/test-tools/venv" 'boto3==1.*'
    export BOTO3_PYTHON="$PWD/target/test-tools/venv/bin/python"
fi

cargo test --locked --workspace --all-targets -- "$@"

if [ $# -eq 0 ]; then
    scripts/check-deploy.sh
fi
