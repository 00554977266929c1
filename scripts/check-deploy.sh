#!/usr/bin/env bash
# Static checks of the deployment code, offline once the tools are installed:
#   helm/gateway: helm lint --strict and helm template for each ci/*-values.yaml, the rendered
#     manifests validated against Kubernetes 1.33 (kubernetes-validate --strict), trivy on the
#     chart, the rendered manifests and the Dockerfile, then the assertions of tests/deploy/.
#   the container image: built from the Dockerfile (scripts/image.sh) and run under Docker as
#     the chart runs it (tests/deploy/test_container.py); Debian's docker.io is installed if missing.
#   terraform/: fmt, validate and `terraform test` of the provider-free values module, and the
#     values it produces for each example rendered through the chart and validated the same way.
# Installs its tools first (scripts/deploy-tools.sh). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/need.sh
. scripts/need.sh
scripts/deploy-tools.sh

TOOLS="$PWD/target/deploy-tools"
export PATH="$TOOLS:$TOOLS/venv/bin:$PATH"
export HELM="$TOOLS/helm"
export TRIVY_CACHE_DIR="$TOOLS/trivy-cache"
OUT="$PWD/target/deploy-check"
rm -rf "$OUT" && mkdir -p "$OUT/rendered" "$OUT/home"
# helm and terraform keep state under HOME; none of it is wanted.
export HELM_CACHE_HOME="$OUT/home/cache" HELM_CONFIG_HOME="$OUT/home/config" HELM_DATA_HOME="$OUT/home/data"
TF_CLI_CONFIG_FILE="$OUT/home/terraformrc"
: >"$TF_CLI_CONFIG_FILE"
export TF_CLI_CONFIG_FILE TF_IN_AUTOMATION=1
K8S_VERSION=1.33.0
CHART=helm/gateway

step() { echo; echo "--- $* ---"; }

# validate FILE: every manifest passes the Kubernetes schema; kinds it has no schema for (CRDs)
# are only warned about, and tests/deploy checks those.
validate() {
    kubernetes-validate --quiet --strict -k "$K8S_VERSION" "$1"
}

step "helm lint --strict, helm template, kubernetes-validate ($K8S_VERSION)"
for values in "$CHART"/ci/*-values.yaml; do
    name=$(basename "$values" -values.yaml)
    helm lint --strict "$CHART" -f "$values" >"$OUT/lint-$name.log" || { cat "$OUT/lint-$name.log"; exit 1; }
    helm template gw "$CHART" --namespace web -f "$values" >"$OUT/rendered/$name.yaml"
    validate "$OUT/rendered/$name.yaml"
    echo "$name: lint ok, $(grep -c '^kind:' "$OUT/rendered/$name.yaml") manifests valid"
done

step "terraform fmt -check -recursive terraform"
terraform fmt -check -recursive -diff terraform
echo "terraform: formatted"

step "terraform/modules/values: init -backend=false, validate, test"
# Plugin and module caches go under target/, not into the source tree.
export TF_DATA_DIR="$OUT/tf-data-values"
(cd terraform/modules/values && terraform init -backend=false -input=false -no-color >/dev/null \
    && terraform validate -no-color && terraform test -no-color)

step "terraform examples -> modules/values apply -> helm template -> kubernetes-validate"
# `terraform apply` of the provider-free module only evaluates its locals: its `values` output
# for each example's inputs is what the root module hands to helm_release.
for example in terraform/examples/*/; do
    name=$(basename "$example")
    work="$OUT/tf-apply-$name"
    mkdir -p "$work"
    cp terraform/modules/values/*.tf "$work/"
    python tests/deploy/tfhcl.py example-inputs "$example" terraform/modules/values >"$work/example.tfvars.json"
    export TF_DATA_DIR="$OUT/tf-data-apply-$name"
    (cd "$work" && terraform init -input=false -no-color >/dev/null \
        && terraform apply -auto-approve -input=false -no-color -var-file=example.tfvars.json >/dev/null \
        && terraform output -no-color -json values >"$OUT/terraform-$name-values.json")
    unset TF_DATA_DIR
    helm lint --strict "$CHART" -f "$OUT/terraform-$name-values.json" >"$OUT/lint-terraform-$name.log" \
        || { cat "$OUT/lint-terraform-$name.log"; exit 1; }
    # The release and namespace the example names (the values module's defaults otherwise).
    read -r release namespace < <(python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))
print(v.get("release_name", "gateway"), v.get("namespace", "gateway"))' "$work/example.tfvars.json")
    helm template "$release" "$CHART" --namespace "$namespace" -f "$OUT/terraform-$name-values.json" \
        >"$OUT/rendered/terraform-$name.yaml"
    validate "$OUT/rendered/terraform-$name.yaml"
    echo "terraform example $name: $(grep -c '^kind:' "$OUT/rendered/terraform-$name.yaml") manifests valid"
done

step "trivy config (HIGH, CRITICAL): chart, rendered manifests, Dockerfile, terraform/"
trivy_config() {
    trivy config --quiet --skip-check-update --exit-code 1 --severity HIGH,CRITICAL "$@"
}
trivy_config "$CHART"
trivy_config "$OUT/rendered"
trivy_config Dockerfile
trivy_config terraform
echo "trivy: no HIGH or CRITICAL finding"

step "chart and terraform assertions (ruff check, pytest tests/deploy)"
# The container test (tests/deploy/test_container.py) builds the image with scripts/image.sh and
# runs it under Docker: a daemon for it, started here when none runs and stopped at the end.
with_dockerd "$OUT/dockerd.log"
ruff check --no-cache --quiet --select E,F,W,B --line-length 130 tests/deploy
pytest -q -p no:cacheprovider tests/deploy

echo; echo "check-deploy: passed"
