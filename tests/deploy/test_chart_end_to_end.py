"""The chart's data path run for real, without Kubernetes: MinIO's StatefulSet, the setup Job,
the seed Job and the gateway Deployment are started with the exact arguments, environment and
mounted files the chart renders (put at the same relative places), and the `helm test` pod's
script checks the result.

MinIO's place is taken by the gateway's embedded S3 backend (`crates/embedded-s3/examples/minio_s3.rs`), run with
the StatefulSet's environment and certs directory: TLS with client certificates asked for, not
required, AssumeRoleWithCertificate, the admin API's add-canned-policy, and each temporary key
held to its policy. A Kubernetes Service name does not resolve here, so the rendered endpoint
is pointed at the loopback port, and the certificates are a PKI made for `localhost` with the
common names the chart gives its two identities (backendTLS.mode=existingSecrets).
"""

import os
import signal
import subprocess
import time
import urllib.request

import pytest

from chart_system import READ, RELEASE_FULLNAME, SEED, Pod, cargo_binaries, get, local_listen, start_system
from conftest import ROOT, render


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


def wait_for(url, status, gateway, timeout=60):
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


def run(gateway, args):
    return subprocess.run([gateway, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def system(tmp_path):
    yield from start_system(tmp_path)


def pod(system, kind, suffix, container, name):
    return Pod(system["chart"].one(kind, suffix), container, system["cluster"], system["root"] / name)


def test_setup_then_seed_then_deployment_each_with_its_own_identity(system):
    gateway, endpoint = system["gateway"], system["endpoint"]
    setup_job = system["chart"].setup_jobs()[0]
    setup = Pod(setup_job, "setup", system["cluster"], system["root"] / "setup")
    seed = pod(system, "Job", "-seed", "seed", "seed")
    deployment = pod(system, "Deployment", "", "gateway", "gateway")

    # The gateway starts with the release, before the setup Job has made its policy: not
    # ready, saying why, and it becomes ready without a restart once the policy exists.
    serve_args, port, admin = local_listen(deployment.args(endpoint))
    server = Gateway(gateway, serve_args, system["root"] / "serve.log")
    try:
        wait_for(f"http://127.0.0.1:{admin}/healthz", 200, server)
        status, _, body = get(f"http://127.0.0.1:{admin}/readyz")
        assert status == 503 and b"AssumeRoleWithCertificate" in body, body

        done = run(gateway, setup.args(endpoint))
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"policies: {READ}: added\npolicies: {SEED}: added\n", done.stdout

        # The seed job's argv with the gateway's certificate: the gateway's identity cannot write.
        as_gateway = Pod(system["chart"].one("Job", "-seed"), "seed", {
            **system["cluster"],
            "secrets": {**system["cluster"]["secrets"], "e2e-seed-tls": system["cluster"]["secrets"]["e2e-client-tls"]},
        }, system["root"] / "seed-as-gateway")
        denied = run(gateway, as_gateway.args(endpoint))
        assert denied.returncode != 0 and "AccessDenied" in denied.stderr, denied.stdout + denied.stderr
        assert not (system["data"] / "gifs" / "gateway.gif").exists()

        seeded = run(gateway, seed.args(endpoint))
        assert seeded.returncode == 0, seeded.stderr
        assert "created" in seeded.stdout, seeded.stdout

        wait_for(f"http://127.0.0.1:{admin}/readyz", 200, server)
        # MinIO sends the event stream's head with its first keep-alive (10 s), and so does the
        # emulation: the subscription counts as made only then, and what was cached before it
        # is revalidated (changes before it were never announced). Serve after it.
        deadline = time.monotonic() + 30
        metrics = b""
        while b'gateway_bucket_events_state{state="subscribed"} 1' not in metrics and time.monotonic() < deadline:
            time.sleep(0.2)
            metrics = get(f"http://127.0.0.1:{admin}/metrics")[2]
        status, content_type, body = get(f"http://127.0.0.1:{port}/gateway.gif")
        assert (status, content_type) == (200, "image/gif")
        assert body == (ROOT / "seed" / "gateway.gif").read_bytes()
        assert get(f"http://127.0.0.1:{port}/missing.gif")[0] == 404
        status, _, metrics = get(f"http://127.0.0.1:{admin}/metrics")
        assert status == 200 and b"gateway_http_requests_total" in metrics
        assert b'gateway_bucket_events_state{state="subscribed"} 1' in metrics

        # The `helm test` pod's own script, against this gateway.
        test_pod = system["chart"].one("Pod", "-test-gif")["spec"]["containers"][0]
        script = test_pod["args"][0]
        url, admin_url = f"http://127.0.0.1:{port}/gateway.gif", f"http://127.0.0.1:{admin}"
        pod_env = {e["name"]: e["value"] for e in test_pod["env"]}
        env = {**os.environ, **pod_env, "URL": url, "ADMIN": admin_url}
        check = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "200 image/gif" in check.stdout and "X-Cache: HIT" in check.stdout, check.stdout
        assert "readyz -> 200" in check.stdout and "gateway_http_requests_total present" in check.stdout
        # Without the seed (AWS), any answer but a server error passes: a missing key's 404.
        unseeded = subprocess.run(["sh", "-c", script], env={**env, "SEEDED": "", "URL": url + ".missing"},
                                  capture_output=True, text=True)
        assert unseeded.returncode == 0 and "not seeded" in unseeded.stdout, unseeded.stdout + unseeded.stderr
        for broken in ({"URL": url + ".missing"}, {"ADMIN": f"http://127.0.0.1:{port}/nothing-here"}):
            failed = subprocess.run(["sh", "-c", script], env={**env, **broken}, capture_output=True, text=True)
            assert failed.returncode != 0, f"the helm test must fail with {broken}: {failed.stdout}"

        # The seed job's purge, with its token: pointed at this gateway (the headless Service's
        # name does not resolve here), it makes the gateway read the object again.
        seed_args = seed.args(endpoint)
        purge = seed_args[seed_args.index("--purge-url") + 1]
        local = purge.replace(purge.split("/")[2], f"127.0.0.1:{admin}")
        token = (system["root"] / "seed/etc/gateway/admin-token/token").read_text()
        req = urllib.request.Request(local, method="POST", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert (r.status, r.read()) == (200, b'{"purged":1}\n')
    finally:
        code = server.terminate()
    assert code == 0, server.log()

    # Running the setup again (an upgrade) changes nothing and succeeds.
    again = run(gateway, setup.args(endpoint))
    assert again.returncode == 0, again.stderr


def test_setup_with_a_wrong_root_key_fails_in_one_line(system):
    gateway, endpoint = system["gateway"], system["endpoint"]
    setup_job = system["chart"].setup_jobs()[0]
    cluster = dict(system["cluster"])
    cluster["secrets"] = dict(cluster["secrets"])
    root = f"{RELEASE_FULLNAME}-credentials"
    cluster["secrets"][root] = {**cluster["secrets"][root], "secret-key": b"not-the-root-key-0123456789"}
    setup = Pod(setup_job, "setup", cluster, system["root"] / "setup-wrong")
    done = run(gateway, setup.args(endpoint))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "add-canned-policy" in lines[0] and "SignatureDoesNotMatch" in lines[0], done.stderr
    assert "not-the-root-key" not in done.stderr


def test_every_serve_flag_is_a_typed_value():
    """Each `gateway serve` flag is set from a value the schema checks (not only through
    gateway.extraArgs), save those that carry secrets (given as files, and only with static
    credentials)."""
    gateway, _ = cargo_binaries()
    help_text = subprocess.run([gateway, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    flags = {line.split()[0].rstrip(",") for line in help_text.splitlines() if line.strip().startswith("--")}
    flags -= {"--help"}
    r = render(
        "--set", "s3.prefix=site/", "--set", "gateway.errorDocument=404.html", "--set", "gateway.spaFallback=index.html",
        "--set", "gateway.listDirectories=true", "--set", "gateway.corsOrigins[0]=https://a.example",
        "--set", "gateway.corsOrigins[1]=https://b.example", "--set", "gateway.compressionStatic=true",
        "--set", "gateway.cache.fillBudget=64MiB", "--set", "gateway.sites[0].name=a", "--set", "gateway.diskCache.enabled=true",
        "--set", "gateway.headerRules[0]=/* X-Frame-Options: DENY", "--set", "gateway.redirects[0]=/a /b 302",
        "--set", "gateway.protect[0].for=/staging/*", "--set", "gateway.protect[0].existingSecret=staff",
        "--set", "gateway.sites[0].hosts[0]=a.example",
    )
    args = [a for a in r.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("--")]
    # Secrets are files (--access-key-file, --secret-key-file), with static credentials only.
    not_values = {"--access-key", "--secret-key", "--access-key-file", "--secret-key-file"}
    missing = flags - set(args) - not_values
    assert not missing, f"gateway serve flags without a chart value: {sorted(missing)}"
    assert args.count("--cors-origin") == 1 and "https://a.example,https://b.example" in r.one("Deployment")["spec"][
        "template"]["spec"]["containers"][0]["args"]
