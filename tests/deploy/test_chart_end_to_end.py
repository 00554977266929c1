"""The chart's data path run for real, without Kubernetes: the `gateway seed` Job and the gateway
Deployment are started with the exact arguments the chart renders (the files they mount put at
the same relative places), against the chart's MinIO TLS proxy (its nginx.conf) in front of an
S3 server in MinIO's place, and the `helm test` pod's script checks the result.

The S3 server is the gateway's embedded one over plain HTTP (`examples/plain_s3.rs`), as MinIO
listens on 127.0.0.1 in its pod. The gateway reaches it through the proxy at `localhost` (a
Kubernetes Service name does not resolve here), so the chart is rendered in its external-S3 form
with that endpoint; the arguments come from the same template either way.
"""

import base64
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, render
from proxy import Proxy, free_port

ACCESS_KEY, SECRET_KEY = "gateway-e2e", "e2e-secret-key-0123456789"


def cargo_binaries():
    """Builds (if needed) and returns the gateway binary and the plain_s3 example."""
    build = subprocess.run(
        ["cargo", "build", "--locked", "--quiet", "--bin", "gateway", "--example", "plain_s3"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert build.returncode == 0, f"cargo build failed:\n{build.stderr}"
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return os.path.join(target, "debug", "gateway"), os.path.join(target, "debug", "examples", "plain_s3")


def materialise(doc, container, secrets, root):
    """The container's argv with every mounted Secret file written under `root` at the path it
    would have in the pod, and the argv's paths pointed there."""
    spec = doc["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
    c = [c for c in spec["containers"] if c["name"] == container][0]
    for mount in c["volumeMounts"]:
        secret = volumes[mount["name"]]
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        data = secrets[secret["secretName"]]
        for item in secret["items"]:
            (target / item["path"]).write_bytes(data[item["key"]])
    return [a.replace("/etc/", f"{root}/etc/") if a.startswith("/etc/") else a for a in c["args"]]


def local_listen(args):
    """The pod binds 0.0.0.0; here the gateway takes free loopback ports instead."""
    args = list(args)
    ports = {}
    for name in ("--listen", "--admin-listen"):
        i = args.index(name) + 1
        assert args[i].startswith("0.0.0.0:"), args[i]
        ports[name] = free_port()
        args[i] = f"127.0.0.1:{ports[name]}"
    return args, ports["--listen"], ports["--admin-listen"]


class Gateway:
    """`gateway ARGS` with its output in a file (a pipe nobody reads would fill up and stall it)."""

    def __init__(self, binary, args, log_path):
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT)

    def log(self):
        return self.log_path.read_text()

    def terminate(self):
        """SIGTERM, as Kubernetes sends; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()
    except OSError:
        return None, None, b""


def wait_for(url, status, gateway, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        got = get(url)[0]
        if got == status:
            return
        if gateway.process.poll() is not None or time.monotonic() > deadline:
            gateway.process.kill()
            gateway.process.wait()
            pytest.fail(f"{url}: wanted {status}, got {got}; gateway output:\n{gateway.log()}")
        time.sleep(0.2)


@pytest.fixture
def system(tmp_path):
    gateway, plain_s3 = cargo_binaries()
    pki = tmp_path / "pki"
    subprocess.run([gateway, "certs", "--out", str(pki), "--server-name", "localhost"], check=True, capture_output=True)
    pem = {name: (pki / name).read_bytes() for name in ("ca.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem")}

    # MinIO's place: S3 on loopback, plain HTTP.
    s3 = subprocess.Popen([plain_s3, str(tmp_path / "data"), ACCESS_KEY, SECRET_KEY], stdout=subprocess.PIPE, text=True)
    line = s3.stdout.readline()
    assert line.startswith("listening on 127.0.0.1:"), line
    s3_port = int(line.rsplit(":", 1)[1])

    # The MinIO pod's TLS proxy, with its server certificate mounted as the chart mounts it.
    server_tls = tmp_path / "server-tls"
    server_tls.mkdir()
    for key, name in (("tls.crt", "server.pem"), ("tls.key", "server-key.pem"), ("ca.crt", "ca.pem")):
        (server_tls / key).write_bytes(pem[name])
    conf = render().one("ConfigMap", "-proxy")["data"]["nginx.conf"]
    proxy = Proxy(conf, server_tls, s3_port, tmp_path)

    chart = render(
        "--set", "minio.enabled=false",
        "--set", f"externalS3.endpoint=https://localhost:{proxy.mtls}",
        "--set", "s3.existingSecret=e2e-credentials",
        "--set", "tls.mode=existingSecrets", "--set", "tls.existingSecrets.client=e2e-client-tls",
    )
    secrets = {
        "e2e-credentials": {"access-key": ACCESS_KEY.encode(), "secret-key": SECRET_KEY.encode()},
        "e2e-client-tls": {"tls.crt": pem["client.pem"], "tls.key": pem["client-key.pem"], "ca.crt": pem["ca.pem"]},
    }
    # The Secret the chart generates (the purge token), as the cluster would hold it.
    for secret in chart.of_kind("Secret"):
        secrets[secret["metadata"]["name"]] = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    yield {"gateway": gateway, "chart": chart, "secrets": secrets, "root": tmp_path / "pod", "proxy": proxy}
    proxy.stop()
    s3.kill()
    s3.wait()


def test_seed_job_then_deployment_serve_the_gif_through_the_mtls_proxy(system):
    chart, gateway = system["chart"], system["gateway"]

    seed_args = materialise(chart.one("Job", "-seed"), "seed", system["secrets"], system["root"])
    seed = subprocess.run([gateway, *seed_args], capture_output=True, text=True, timeout=120)
    assert seed.returncode == 0, seed.stderr
    assert "created" in seed.stdout, seed.stdout
    again = subprocess.run([gateway, *seed_args], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already present" in again.stdout, again.stdout + again.stderr

    serve_args, port, admin = local_listen(materialise(chart.one("Deployment"), "gateway", system["secrets"], system["root"]))
    server = Gateway(gateway, serve_args, system["root"] / "serve.log")
    try:
        wait_for(f"http://127.0.0.1:{admin}/readyz", 200, server)
        status, content_type, body = get(f"http://127.0.0.1:{port}/gateway.gif")
        assert (status, content_type) == (200, "image/gif")
        assert body == (ROOT / "seed" / "gateway.gif").read_bytes()
        status, _, metrics = get(f"http://127.0.0.1:{admin}/metrics")
        assert status == 200 and b"gateway_http_requests_total" in metrics

        # The `helm test` pod's own script, against this gateway.
        test_pod = chart.one("Pod", "-test-gif")["spec"]["containers"][0]
        script = test_pod["args"][0]
        url = f"http://127.0.0.1:{port}/gateway.gif"
        run = subprocess.run(["sh", "-c", script], env={**os.environ, "URL": url}, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "200 image/gif" in run.stdout
        missing = subprocess.run(
            ["sh", "-c", script], env={**os.environ, "URL": url + ".missing"}, capture_output=True, text=True
        )
        assert missing.returncode != 0, "the helm test must fail when the GIF is not served"

        # The seed job's purge, with its token: pointed at this gateway (the headless Service's
        # name does not resolve here), it makes the gateway read the object again.
        assert get(f"http://127.0.0.1:{port}/gateway.gif")[0] == 200
        purge = seed_args[seed_args.index("--purge-url") + 1]
        local = purge.replace(purge.split("/")[2], f"127.0.0.1:{admin}")
        token = (system["root"] / "etc/gateway/admin-token/token").read_text()
        req = urllib.request.Request(local, method="POST", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert (r.status, r.read()) == (200, b'{"purged":1}\n')
    finally:
        code = server.terminate()
    assert code == 0, server.log()


def test_gateway_without_the_client_certificate_is_refused_by_the_proxy(system):
    """nginx completes the TLS handshake, then closes without an alert: the gateway sees a closed
    connection, so it is not ready and answers 503 (retry later), never 404 or the object; its
    log points at the client certificate, and the proxy's log names the refusal."""
    chart, gateway = system["chart"], system["gateway"]
    args = materialise(chart.one("Deployment"), "gateway", system["secrets"], system["root"])
    for flag in ("--client-cert", "--client-key"):
        i = args.index(flag)
        del args[i:i + 2]
    args, port, admin = local_listen(args)
    server = Gateway(gateway, args, system["root"] / "serve.log")
    try:
        wait_for(f"http://127.0.0.1:{admin}/healthz", 200, server)
        ready = get(f"http://127.0.0.1:{admin}/readyz")[0]
        status = get(f"http://127.0.0.1:{port}/gateway.gif")[0]
    finally:
        server.terminate()
    out = server.log()
    assert (ready, status) == (503, 503), out
    assert "refusing the client certificate" in out, out
    assert "client sent no required SSL certificate" in system["proxy"].log()
