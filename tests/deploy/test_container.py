"""The container image run the way the chart runs it, under a real Docker engine.

The image is built from the repository's Dockerfile by scripts/image.sh (its runtime stage, with
the binary the tests built). Each container of the setup Job, the seed Job and the Deployment
runs it with what `helm template` renders for the default values: its args and environment,
the security context (user 65532 with the pod's fsGroup, read-only root filesystem, every
capability dropped, no privilege escalation), the memory limit as `docker run --memory`, and the
Secrets and ConfigMaps mounted read-only at the rendered paths with their defaultMode (owned by
the fsGroup, as the kubelet does). The embedded S3 backend stands in MinIO's place outside the
image. With no Service DNS, the containers share the host's network: the listeners are moved to
free loopback ports and the endpoint and purge URL point at them.

Figures (image size, time to ready, the container's cgroup peak under load, `docker stop`) are
written to target/image/container-figures.txt.
"""

import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chart_system import SEED, Pod, cargo_binaries, free_port, get, start_system
from conftest import ROOT

DOCKER = "/usr/bin/docker"
IMAGE = "gateway:test"
FIGURES = ROOT / "target" / "image" / "container-figures.txt"


def docker(*args, check=True, timeout=120):
    p = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"docker {' '.join(args)}: {p.stderr}"
    return p


@pytest.fixture(scope="module")
def image():
    if not Path(DOCKER).exists():
        pytest.fail("docker is missing: install the Debian package docker.io (scripts/check-deploy.sh does)")
    if subprocess.run([DOCKER, "info"], capture_output=True).returncode != 0:
        pytest.fail("dockerd is not running: scripts/check-deploy.sh starts one (or run `dockerd &` as root)")
    # The tests' binary, unless GATEWAY_IMAGE_BINARY names another (the release build, for figures).
    gateway = os.environ.get("GATEWAY_IMAGE_BINARY") or cargo_binaries()[0]
    built = subprocess.run(
        ["scripts/image.sh", "--binary", gateway], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "IMAGE": IMAGE}, timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text("")
    return IMAGE


def figure(line):
    with FIGURES.open("a") as f:
        f.write(line + "\n")


def mebibytes(quantity):
    """A Kubernetes memory quantity (`256Mi`, `1Gi`) in MiB."""
    number, unit = re.fullmatch(r"([0-9]+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


class Container:
    """One rendered container run under Docker as its pod would run it."""

    def __init__(self, pod, name, args):
        self.name = f"gw-test-{name}-{os.getpid()}"
        pod_sc = pod.spec.get("securityContext", {})
        sc = {**pod_sc, **pod.container.get("securityContext", {})}
        fs_group = pod_sc.get("fsGroup")
        cmd = ["run", "--name", self.name, "--network", "host", "--user", f"{sc['runAsUser']}:{sc['runAsGroup']}"]
        if fs_group is not None:
            cmd += ["--group-add", str(fs_group)]
        if sc.get("readOnlyRootFilesystem"):
            cmd.append("--read-only")
        cmd += [f"--cap-drop={c}" for c in sc.get("capabilities", {}).get("drop", [])]
        if sc.get("allowPrivilegeEscalation") is False:
            cmd += ["--security-opt", "no-new-privileges"]
        limit = pod.container.get("resources", {}).get("limits", {}).get("memory")
        if limit:
            self.limit_mib = mebibytes(limit)
            cmd += ["--memory", f"{self.limit_mib}m", "--memory-swap", f"{self.limit_mib}m"]
        for key, value in pod.env.items():
            cmd += ["-e", f"{key}={value}"]
        for path, mode in pod.mounts:
            host = pod.root / path.lstrip("/")
            os.chmod(host, 0o755)
            for f in host.rglob("*"):
                if f.is_file():
                    # The kubelet's way: the Secret's defaultMode, group-owned by the fsGroup.
                    os.chown(f, 0, fs_group if fs_group is not None else 0)
                    os.chmod(f, mode if mode is not None else 0o644)
            cmd += ["-v", f"{host}:{path}:ro"]
        self.cmd = [*cmd, IMAGE, *args]

    def run(self):
        """Runs to completion, as a Job's pod; returns (exit code, output)."""
        p = docker(*self.cmd, check=False, timeout=300)
        docker("rm", "-f", self.name, check=False)
        return p.returncode, p.stdout + p.stderr

    def start(self):
        docker(*self.cmd[:1], "-d", *self.cmd[1:])
        self.id = docker("inspect", "--format", "{{.Id}}", self.name).stdout.strip()
        return self

    def state(self):
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def logs(self):
        p = docker("logs", self.name, check=False)
        return p.stdout + p.stderr

    def memory_peak(self):
        """The container's memory cgroup peak (bytes), v1 or v2, or None."""
        for path in (
            f"/sys/fs/cgroup/memory/docker/{self.id}/memory.max_usage_in_bytes",
            f"/sys/fs/cgroup/docker/{self.id}/memory.peak",
            f"/sys/fs/cgroup/system.slice/docker-{self.id}.scope/memory.peak",
        ):
            if os.path.exists(path):
                return int(Path(path).read_text())
        return None

    def remove(self):
        docker("rm", "-f", self.name, check=False)


def container_args(pod, endpoint, ports=None):
    """The rendered args with the endpoint, listeners and purge URL of this host."""
    args = list(pod.container["args"])
    args[args.index("--endpoint") + 1] = endpoint
    for flag, port in (ports or {}).items():
        # The chart's address, `[::]`, on a free port of this host: reached over IPv4 here,
        # which a dual-stack socket accepts.
        host = args[args.index(flag) + 1].rsplit(":", 1)[0]
        assert host == "[::]", args
        args[args.index(flag) + 1] = f"{host}:{port}"
    return args


def wait_status(url, status, container, timeout=60):
    deadline = time.monotonic() + timeout
    while get(url)[0] != status:
        assert container.state()["Running"], f"the container stopped:\n{container.logs()}"
        assert time.monotonic() < deadline, f"{url} never answered {status}:\n{container.logs()}"
        time.sleep(0.1)


@pytest.fixture
def system(tmp_path):
    yield from start_system(tmp_path)


def test_the_image_holds_the_binary_and_no_shell(image):
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout)
    files = set((ROOT / "target" / "image" / "files.txt").read_text().split())
    figure(f"image size: {size / 1e6:.1f} MB ({len(files)} paths)")
    # A release binary makes it about 30 MB; the tests' binary, stripped of debug info, is larger.
    assert size < 120e6, size
    assert "usr/local/bin/gateway" in files
    for absent in ("bin/sh", "bin/bash", "usr/bin/dpkg", "usr/bin/apt", "usr/bin/apt-get", "bin/busybox"):
        assert absent not in files, f"{absent} is in the image"
    assert "etc/ssl/certs/ca-certificates.crt" in files
    passwd = docker("run", "--rm", "--entrypoint", "/usr/local/bin/gateway", image, "--version").stdout
    assert passwd.startswith("gateway "), passwd
    sbom = json.loads((ROOT / "target" / "image" / "sbom.cdx.json").read_text())
    assert {"libc6", "ca-certificates"} <= {c["name"] for c in sbom["components"]}


def test_setup_seed_and_deployment_run_as_the_chart_runs_them(image, system):
    chart, cluster, root, endpoint = system["chart"], system["cluster"], system["root"], system["endpoint"]
    deployment = Pod(chart.one("Deployment"), "gateway", cluster, root / "gateway")
    setup = Pod(chart.setup_jobs()[0], "setup", cluster, root / "setup")
    seed = Pod(chart.one("Job", "-seed"), "seed", cluster, root / "seed")
    port, admin = free_port(), free_port()
    grace = deployment.spec["terminationGracePeriodSeconds"]

    server = Container(deployment, "gateway", container_args(deployment, endpoint, {
        "--listen": port, "--admin-listen": admin,
    }))
    started = time.monotonic()
    server.start()
    try:
        # Up before the setup Job made its policy: alive, not ready, saying why.
        wait_status(f"http://127.0.0.1:{admin}/healthz", 200, server)
        figure(f"docker run to /healthz 200: {time.monotonic() - started:.2f} s")
        status, _, body = get(f"http://127.0.0.1:{admin}/readyz")
        assert status == 503 and b"AssumeRoleWithCertificate" in body, body

        code, out = Container(setup, "setup", container_args(setup, endpoint)).run()
        assert code == 0, out
        assert f"policies: {SEED}: added" in out, out

        wait_status(f"http://127.0.0.1:{admin}/readyz", 200, server)
        figure(f"start to ready (after the setup Job): {time.monotonic() - started:.2f} s")

        # The seed Job uploads the GIF and purges it from the gateway with its token.
        seed_args = container_args(seed, endpoint)
        i = seed_args.index("--purge-url") + 1
        seed_args[i] = seed_args[i].replace(seed_args[i].split("/")[2], f"127.0.0.1:{admin}")
        code, out = Container(seed, "seed", seed_args).run()
        assert code == 0, out
        assert "created" in out and "seed: purged 1 gateway(s)" in out, out

        status, content_type, body = get(f"http://127.0.0.1:{port}/gateway.gif")
        assert (status, content_type) == (200, "image/gif")
        assert body == (ROOT / "seed" / "gateway.gif").read_bytes()
        status, _, metrics = get(f"http://127.0.0.1:{admin}/metrics")
        assert status == 200 and b'gateway_http_requests_total' in metrics
        assert b'gateway_purge_requests_total{outcome="key"} 1' in metrics, metrics

        # Read-only root, no capabilities: it started, raised its open-file limit and wrote nothing.
        logs = server.logs()
        serving = [json.loads(line) for line in logs.splitlines() if '"gateway serving"' in line]
        assert serving and serving[0]["sealed_entries"] >= 256, logs
        assert "Read-only file system" not in logs and "Permission denied" not in logs, logs

        load_at_the_memory_limit(server, system["data"], port, admin)

        # SIGTERM to PID 1: it drains (the shutdown delay, then the listener closes) and exits 0
        # within the pod's grace period.
        t = time.monotonic()
        docker("stop", "-t", str(grace), server.name, timeout=grace + 30)
        took = time.monotonic() - t
        state = server.state()
        figure(f"docker stop: exited {state['ExitCode']} after {took:.2f} s (grace period {grace} s)")
        assert (state["ExitCode"], state["OOMKilled"]) == (0, False), server.logs()
        assert took < grace, took
        assert "all connections drained" in server.logs()
    finally:
        server.remove()


def load_at_the_memory_limit(server, data, port, admin):
    """A herd of clients on cold objects, more than the cache holds, at the chart's memory
    limit: the container is not OOM-killed and every body is right."""
    objects, size, clients = 12, 14 << 20, 8
    digests = {}
    for i in range(2 * objects):
        body = bytes([i + 1]) * size
        (data / "gifs" / f"load-{i}.bin").write_bytes(body)
        digests[f"load-{i}.bin"] = hashlib.sha256(body).hexdigest()
    warm, cold = sorted(digests)[:objects], sorted(digests)[objects:]

    def fetch(key):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{key}", timeout=60) as r:
                return key, r.status, hashlib.sha256(r.read()).hexdigest()
        except urllib.error.HTTPError as e:
            return key, e.code, e.headers.get("Retry-After")

    # The cache filled to its bound (12 x 14 MiB > 128 MiB), one object after another.
    for key in warm:
        assert fetch(key) == (key, 200, digests[key])
    answers = {200: 0, 503: 0}
    with concurrent.futures.ThreadPoolExecutor(objects * clients) as pool:
        for _ in range(2):
            for key, status, digest in pool.map(fetch, [k for k in cold for _ in range(clients)]):
                # Past --backend-max-concurrency (64) a miss is refused at once, with Retry-After.
                assert (status, digest) in ((200, digests[key]), (503, "1")), f"{key}: {status} {digest}"
                answers[status] += 1
    assert answers[200] >= objects * clients, answers
    state = server.state()
    assert state["Running"] and not state["OOMKilled"], server.logs()
    metrics = get(f"http://127.0.0.1:{admin}/metrics")[2].decode()
    cached = re.search(r"^gateway_cache_size_bytes (\S+)$", metrics, re.M)
    peak = server.memory_peak()
    figure(
        f"load: cache filled with {objects} x 14 MiB, then {objects} other cold 14 MiB objects, {clients} clients each, "
        f"twice ({answers[200]} x 200, {answers[503]} x 503 past the backend concurrency cap); "
        f"cache {float(cached.group(1)) / 2**20:.1f} MiB; "
        + (f"cgroup peak {peak / 2**20:.1f} MiB of the {server.limit_mib} MiB limit" if peak else "cgroup peak: not found")
    )
    if peak:
        assert peak <= server.limit_mib << 20
