"""Renders the chart with the real `helm` for the tests of tests/deploy/.

`HELM` names the helm binary (default: `helm` on PATH); scripts/check-deploy.sh installs one.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "gateway"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def helm_binary() -> str:
    helm = os.environ.get("HELM") or shutil.which("helm")
    if not helm:
        pytest.fail("helm is missing: run scripts/check-deploy.sh, which installs it, or set HELM=/path/to/helm")
    return helm


class Rendered:
    """The manifests of one `helm template`, indexed by kind and name."""

    def __init__(self, docs):
        self.docs = [d for d in docs if d]

    def of_kind(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind, suffix=""):
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"].endswith(suffix)]
        assert len(found) == 1, f"expected one {kind} named *{suffix}, found {[d['metadata']['name'] for d in found]}"
        return found[0]

    def setup_jobs(self):
        """The setup Jobs (their names end in a digest of what they do)."""
        return [d for d in self.of_kind("Job") if "-setup-" in d["metadata"]["name"]]

    def names(self):
        return [(d["kind"], d["metadata"]["name"]) for d in self.docs]


def helm_template(*args, release="gw", namespace="web"):
    """Runs `helm template`; returns (exit code, stdout, stderr)."""
    cmd = [helm_binary(), "template", release, str(CHART), "--namespace", namespace, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HELM_NAMESPACE": namespace})
    return p.returncode, p.stdout, p.stderr


def render(*args, **kw) -> Rendered:
    code, out, err = helm_template(*args, **kw)
    assert code == 0, f"helm template {' '.join(args)} failed:\n{err}"
    return Rendered(list(yaml.safe_load_all(out)))


@pytest.fixture(scope="session", params=CI_VALUES, ids=[p.name for p in CI_VALUES])
def ci_render(request) -> Rendered:
    """The chart rendered with each of helm/gateway/ci/*-values.yaml, once per session: the tests
    only read it."""
    return render("-f", str(request.param))
