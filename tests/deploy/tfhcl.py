"""Reads Terraform files with python-hcl2 into plain Python values.

`python tests/deploy/tfhcl.py example-inputs EXAMPLE_DIR VALUES_MODULE_DIR` prints, as a
`.tfvars.json` document, the arguments the example passes to the gateway module that are
inputs of modules/values: scripts/check-deploy.sh applies modules/values with them and renders
the chart with the result, so the example's values are known to pass the chart's schema.
"""

import json
import sys
from pathlib import Path

import hcl2


def literal(value, where="value"):
    """An HCL literal as Python: python-hcl2 keeps strings quoted and expressions as ${...}."""
    if isinstance(value, str):
        if value.startswith("${"):
            raise ValueError(f"{where} is an expression ({value}); the example's inputs must be literals")
        if value.startswith('"') and value.endswith('"'):
            return json.loads(value)
        return value
    if isinstance(value, list):
        return [literal(v, where) for v in value]
    if isinstance(value, dict):
        return {
            literal(k, where): literal(v, f"{where}.{k}")
            for k, v in value.items()
            if not k.startswith("__")
        }
    return value


def blocks(path, kind):
    """{name: body} of the `kind` blocks ("variable", "module", ...) of every .tf file in `path`."""
    found = {}
    for tf in sorted(Path(path).glob("*.tf")):
        with open(tf) as f:
            for block in hcl2.load(f).get(kind, []):
                for name, body in block.items():
                    found[json.loads(name) if name.startswith('"') else name] = body
    return found


def example_inputs(example_dir, values_dir):
    modules = [b for b in blocks(example_dir, "module").values() if literal(b["source"]) == "../../"]
    assert len(modules) == 1, f"{example_dir} must call the root module (source = \"../../\") once"
    names = set(blocks(values_dir, "variable"))
    return {k: literal(v, k) for k, v in modules[0].items() if k in names}


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "example-inputs":
        sys.exit("usage: tfhcl.py example-inputs EXAMPLE_DIR VALUES_MODULE_DIR")
    print(json.dumps(example_inputs(sys.argv[2], sys.argv[3]), indent=2))
