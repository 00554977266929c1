"""Static checks of the Terraform root module, which cannot be validated here (its providers are
not downloadable): it must hand every input to modules/values unchanged, install the chart with
that module's values, and document every input and output.

modules/values itself is checked by `terraform validate` and `terraform test`
(scripts/check-deploy.sh).
"""

import re

from conftest import ROOT
from tfhcl import blocks, literal

TF = ROOT / "terraform"
VALUES = TF / "modules" / "values"


def test_root_passes_every_values_input_unchanged():
    root_vars, module_vars = blocks(TF, "variable"), blocks(VALUES, "variable")
    call = blocks(TF, "module")["values"]
    assert literal(call["source"]) == "./modules/values"
    for name, var in module_vars.items():
        assert name in root_vars, f"root module lacks variable {name}"
        for key in ("type", "default", "description", "nullable"):
            assert root_vars[name].get(key) == var.get(key), f"{name}.{key} differs between the root and modules/values"
        assert call.get(name) == f"${{var.{name}}}", f"module \"values\" must get {name} = var.{name}"
    passed = {k for k in call if not k.startswith("__") and k != "source"}
    assert passed == set(module_vars)


def test_helm_release_gets_the_values_module_output():
    release = blocks(TF, "resource")["helm_release"]
    body = release["gateway"] if "gateway" in release else release['"gateway"']
    assert "yamlencode(module.values.values)" in body["values"]
    assert "helm/gateway" in body["chart"]
    assert body["wait"] is True and body["wait_for_jobs"] is True
    assert body["namespace"] == "${module.values.namespace}"


def test_credentials_are_generated_and_sensitive():
    text = (TF / "main.tf").read_text()
    assert 'resource "random_password" "secret_key"' in text
    assert 'resource "kubernetes_secret_v1" "credentials"' in text
    assert "random_password.secret_key[0].result" in text
    creds = blocks(TF, "variable")["s3_credentials"]
    assert creds["sensitive"] is True
    assert creds["default"] is None


def test_providers_and_terraform_are_pinned():
    versions = (TF / "versions.tf").read_text()
    assert re.search(r'required_version\s*=\s*">= 1\.9"', versions)
    for provider in ("kubernetes", "helm", "random"):
        assert re.search(rf'source\s*=\s*"hashicorp/{provider}"\s*\n\s*version\s*=\s*"~> [0-9]+\.[0-9]+"', versions), provider
    assert "required_providers" not in (VALUES / "versions.tf").read_text(), "modules/values must stay provider-free"
    assert not list(VALUES.glob("providers.tf"))


def test_every_variable_and_output_is_typed_and_described():
    for module in (TF, VALUES):
        for name, var in blocks(module, "variable").items():
            assert literal(var.get("description", "")).strip(), f"{module.name}: variable {name} has no description"
            assert "type" in var, f"{module.name}: variable {name} has no type"
        for name, out in blocks(module, "output").items():
            assert literal(out.get("description", "")).strip(), f"{module.name}: output {name} has no description"


def test_every_values_variable_is_validated_or_free_form():
    free_form = {"metrics"}  # booleans and a label map: the type says it all
    for name, var in blocks(VALUES, "variable").items():
        assert var.get("validation") or name in free_form, f"modules/values: {name} has no validation block"


def test_readme_documents_every_input_and_output():
    readme = (TF / "README.md").read_text()
    rows = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    for name in list(blocks(TF, "variable")) + list(blocks(TF, "output")):
        assert name in rows, f"terraform/README.md does not document {name}"
    for command in ("terraform init", "terraform apply", "terraform destroy"):
        assert command in readme


def test_the_module_configures_no_provider_and_each_example_does():
    """A module with its own provider blocks is a legacy module: its callers cannot use count,
    for_each or depends_on, and it decides how the cluster authenticates. The root module only
    declares what it needs; every example configures kubernetes and helm and calls it once."""
    for module in (TF, VALUES):
        assert not blocks(module, "provider"), f"{module.name} configures providers"
    examples = sorted(p for p in (TF / "examples").iterdir() if p.is_dir())
    assert {p.name for p in examples} >= {"minikube", "complete", "external-s3", "cert-manager"}
    root_vars = set(blocks(TF, "variable"))
    for example in examples:
        providers = blocks(example, "provider")
        assert {"kubernetes", "helm"} <= set(providers), f"{example.name}: {sorted(providers)}"
        calls = [m for m in blocks(example, "module").values() if literal(m["source"]) == "../../"]
        assert len(calls) == 1, example.name
        args = {k for k in calls[0] if not k.startswith("__") and k != "source"}
        assert args <= root_vars, f"{example.name} passes unknown inputs {args - root_vars}"
        versions = (example / "versions.tf").read_text()
        assert "hashicorp/kubernetes" in versions and "hashicorp/helm" in versions, example.name


def test_release_status_and_revision_are_outputs():
    outputs = blocks(TF, "output")
    assert outputs["release_status"]["value"] == "${helm_release.gateway.status}"
    assert outputs["release_revision"]["value"] == "${helm_release.gateway.metadata[0].revision}"
