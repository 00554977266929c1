"""Runs the chart's MinIO TLS proxy (its nginx.conf, as rendered) with Debian's nginx and its
stream module, on loopback ports, in front of a given upstream in MinIO's place."""

import os
import socket
import subprocess
import time

import pytest

NGINX = "/usr/sbin/nginx"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, what, output, timeout=20):
    """Waits until `port` accepts connections; fails with `output()` if `process` ends first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"{what} did not start listening on {port}:\n{output()}")
            time.sleep(0.1)


class Proxy:
    """nginx with the chart's config: `mtls` is its TLS port (9443 in the pod), `health` the
    plain health port (9080); `tls_dir` holds tls.crt, tls.key and ca.crt as the pod mounts them."""

    def __init__(self, conf, tls_dir, upstream_port, workdir):
        for path, package in [(NGINX, "nginx-light"), (STREAM_MODULE, "libnginx-mod-stream")]:
            if not os.path.exists(path):
                pytest.fail(f"{path} is missing: install the Debian package {package} (scripts/deploy-tools.sh does)")
        self.mtls, self.health = free_port(), free_port()
        run = workdir / "nginx-run"
        run.mkdir()
        conf = (
            conf.replace("/tmp/", f"{run}/")
            .replace("/etc/minio/tls", str(tls_dir))
            .replace("127.0.0.1:9000", f"127.0.0.1:{upstream_port}")
            .replace("listen 9443", f"listen 127.0.0.1:{self.mtls}")
            .replace("listen 9080", f"listen 127.0.0.1:{self.health}")
        )
        head = f"load_module {STREAM_MODULE};\n"
        if os.geteuid() == 0:
            head += "user root;\n"  # workers read the certificates from a private temp dir
        (workdir / "nginx.conf").write_text(head + conf)
        # The log goes to a file: a pipe nobody reads would fill up and stall nginx.
        self.log_path = workdir / "nginx.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [NGINX, "-p", str(run), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        for port in (self.health, self.mtls):
            wait_for_port(port, self.process, "nginx with the chart's config", self.log)

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        """Stops nginx (again is fine)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
