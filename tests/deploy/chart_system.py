"""The chart's workloads run for real, without Kubernetes, shared by the end-to-end tests of the
binary (test_chart_end_to_end.py) and of the container image (test_container.py): the
arguments, environment and mounted files the chart renders, a PKI for `localhost` with the
common names the chart gives its identities, and the embedded S3 backend in MinIO's place,
started with the StatefulSet's environment and certs directory.
"""

import base64
import os
import socket
import subprocess
import urllib.error
import urllib.request

from conftest import ROOT, render

RELEASE_FULLNAME = "gw-gateway"
READ, SEED = f"{RELEASE_FULLNAME}-read", f"{RELEASE_FULLNAME}-seed"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cargo_binaries():
    """Builds (if needed) and returns the gateway binary and the minio_s3 example."""
    # The whole workspace, as the Rust tests build it: the same features, so nothing is rebuilt.
    build = subprocess.run(
        ["cargo", "build", "--locked", "--quiet", "--workspace", "--bin", "gateway", "--example", "minio_s3"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert build.returncode == 0, f"cargo build failed:\n{build.stderr}"
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return os.path.join(target, "debug", "gateway"), os.path.join(target, "debug", "examples", "minio_s3")


class Pod:
    """One container of a rendered workload, its mounted Secrets and ConfigMaps written under
    `root` at the paths they have in the pod."""

    def __init__(self, doc, container, cluster, root):
        spec = doc["spec"]["template"]["spec"]
        self.container = [c for c in spec["containers"] if c["name"] == container][0]
        self.root = root
        self.spec = spec
        volumes = {v["name"]: v for v in spec["volumes"]}
        # (path in the pod, file mode of a Secret's files or None), for each file volume.
        self.mounts = []
        for mount in self.container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})  # a volumeClaimTemplate's is a directory
            if "secret" in volume:
                data, items = cluster["secrets"][volume["secret"]["secretName"]], volume["secret"].get("items")
            elif "configMap" in volume:
                data, items = cluster["configmaps"][volume["configMap"]["name"]], volume["configMap"].get("items")
            else:
                continue
            mode = volume.get("secret", volume.get("configMap", {})).get("defaultMode")
            self.mounts.append((mount["mountPath"], mode))
            items = items or [{"key": k, "path": k} for k in data]
            for item in items:
                target = root / mount["mountPath"].lstrip("/") / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data[item["key"]])
        self.env = {}
        for e in self.container.get("env", []):
            if "value" in e:
                self.env[e["name"]] = e["value"]
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                self.env[e["name"]] = cluster["secrets"][ref["name"]][ref["key"]].decode()

    def args(self, endpoint=None):
        """The argv, its paths under `root`, and `--endpoint` pointed at `endpoint`."""
        args = [a.replace("/etc/", f"{self.root}/etc/") if a.startswith("/etc/") else a for a in self.container["args"]]
        if endpoint and "--endpoint" in args:
            args[args.index("--endpoint") + 1] = endpoint
        return args


def local_listen(args):
    """The pod binds `[::]`; here the gateway takes free loopback ports instead."""
    args = list(args)
    ports = {}
    for name in ("--listen", "--admin-listen"):
        i = args.index(name) + 1
        assert args[i].startswith("[::]:"), args[i]
        ports[name] = free_port()
        args[i] = f"127.0.0.1:{ports[name]}"
    return args, ports["--listen"], ports["--admin-listen"]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()
    except OSError:
        return None, None, b""


def start_system(tmp_path):
    """Renders the chart, writes its Secrets and ConfigMaps, starts the embedded backend as
    MinIO; yields what the tests need, and stops the backend."""
    gateway, minio_s3 = cargo_binaries()
    pki = tmp_path / "pki"
    subprocess.run(
        [gateway, "certs", "--out", str(pki), "--server-name", "localhost", "--client-name", READ, "--extra-client", SEED],
        check=True, capture_output=True,
    )
    pem = {p.name: p.read_bytes() for p in pki.iterdir()}
    chart = render(
        "--set", "backendTLS.mode=existingSecrets",
        "--set", "backendTLS.existingSecrets.client=e2e-client-tls",
        "--set", "backendTLS.existingSecrets.seedClient=e2e-seed-tls",
        "--set", "backendTLS.existingSecrets.server=e2e-server-tls",
    )
    cluster = {
        "secrets": {
            "e2e-client-tls": {"tls.crt": pem["client.pem"], "tls.key": pem["client-key.pem"], "ca.crt": pem["ca.pem"]},
            "e2e-seed-tls": {
                "tls.crt": pem[f"client-{SEED}.pem"], "tls.key": pem[f"client-{SEED}-key.pem"], "ca.crt": pem["ca.pem"],
            },
            "e2e-server-tls": {"tls.crt": pem["server.pem"], "tls.key": pem["server-key.pem"], "ca.crt": pem["ca.pem"]},
        },
        "configmaps": {c["metadata"]["name"]: {k: v.encode() for k, v in c["data"].items()} for c in chart.of_kind("ConfigMap")},
    }
    # The Secrets the chart generates (MinIO's root credentials, the purge token), as the
    # cluster would hold them.
    for secret in chart.of_kind("Secret"):
        cluster["secrets"][secret["metadata"]["name"]] = {k: base64.b64decode(v) for k, v in secret["data"].items()}

    minio = Pod(chart.one("StatefulSet", "-minio"), "minio", cluster, tmp_path / "minio")
    args = minio.container["args"]
    certs = minio.args()[args.index("--certs-dir") + 1]
    s3 = subprocess.Popen(
        [minio_s3, str(tmp_path / "data"), certs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **minio.env},
    )
    line = s3.stdout.readline()
    assert line.startswith("listening on 127.0.0.1:"), line + s3.stderr.read()
    endpoint = f"https://localhost:{line.rsplit(':', 1)[1].strip()}"
    yield {
        "gateway": gateway, "chart": chart, "cluster": cluster, "root": tmp_path, "endpoint": endpoint,
        "data": tmp_path / "data",
    }
    s3.kill()
    s3.wait()
