"""The MinIO pod's TLS proxy, run for real: the nginx.conf and the certificates the chart renders,
served by Debian's nginx (with its stream module) in front of a stand-in for MinIO on loopback.

MinIO does not require client certificates on its S3 API, so this proxy is what makes the
backend connection mutual TLS; these tests show that it refuses clients without a certificate
from the chart's CA and passes those with one.
"""

import base64
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from conftest import render
from proxy import Proxy

SERVER_NAME = "gw-gateway-minio.web.svc.cluster.local"


class StandIn(http.server.BaseHTTPRequestHandler):
    """Answers every request as MinIO's health endpoints would, naming the path."""

    seen = []

    def do_GET(self):
        StandIn.seen.append(self.path)
        body = f"minio saw {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxy(tmp_path):
    r = render()
    conf = r.one("ConfigMap", "-proxy")["data"]["nginx.conf"]
    tls = tmp_path / "tls"
    tls.mkdir()
    for key, value in r.one("Secret", "-minio-tls")["data"].items():
        (tls / key).write_bytes(base64.b64decode(value))
    client = tmp_path / "client"
    client.mkdir()
    for key, value in r.one("Secret", "-client-tls")["data"].items():
        (client / key).write_bytes(base64.b64decode(value))

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    nginx = Proxy(conf, tls, upstream.server_address[1], tmp_path)
    yield {"tls": tls, "client": client, "mtls": nginx.mtls, "health": nginx.health, "tmp": tmp_path}
    nginx.stop()
    upstream.shutdown()


def s3_get(port, ca, cert=None, key=None):
    """GET / through the TLS port, verifying the server as the gateway does; returns the reply."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as s:
            s.sendall(b"GET /gifs/gateway.gif HTTP/1.0\r\nHost: minio\r\n\r\n")
            chunks = []
            while data := s.recv(4096):
                chunks.append(data)
            return b"".join(chunks).decode(errors="replace")


def test_client_with_the_chart_certificate_reaches_minio(proxy):
    reply = s3_get(proxy["mtls"], proxy["client"] / "ca.crt", proxy["client"] / "tls.crt", proxy["client"] / "tls.key")
    assert reply.startswith("HTTP/1.0 200") and "minio saw /gifs/gateway.gif" in reply, reply


def refused(*args):
    """Whether the proxy refuses this client: the handshake fails, or the connection closes with
    nothing sent back (TLS 1.3 reports a refused client certificate after the client's side of the
    handshake), and the request never reaches MinIO."""
    before = len(StandIn.seen)
    try:
        reply = s3_get(*args)
    except (ssl.SSLError, ConnectionError):
        reply = ""
    return reply == "" and len(StandIn.seen) == before


def test_client_without_certificate_is_refused(proxy):
    assert refused(proxy["mtls"], proxy["client"] / "ca.crt")


def test_client_certificate_from_another_ca_is_refused(proxy, tmp_path):
    other = tmp_path / "other"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(other) + ".key", "-out", str(other) + ".crt", "-days", "1", "-subj", "/CN=intruder"],
        check=True, capture_output=True,
    )
    assert refused(proxy["mtls"], proxy["client"] / "ca.crt", str(other) + ".crt", str(other) + ".key")
    # The chart's own client, on the same proxy, is served.
    assert not refused(proxy["mtls"], proxy["client"] / "ca.crt", proxy["client"] / "tls.crt", proxy["client"] / "tls.key")


def test_health_port_passes_only_the_health_paths(proxy):
    base = f"http://127.0.0.1:{proxy['health']}"
    for path in ("/minio/health/live", "/minio/health/ready"):
        with urllib.request.urlopen(base + path, timeout=5) as reply:
            assert reply.status == 200 and reply.read().decode() == f"minio saw {path}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + "/gifs/gateway.gif", timeout=5)
    assert refused.value.code == 404


def test_renewed_server_certificate_is_used_without_restart(proxy):
    """cert-manager renews the server certificate in place; the proxy must not need a restart."""
    renewed = proxy["tmp"] / "renewed"
    shutil.copytree(proxy["tls"], renewed)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(renewed / "tls.key"), "-out", str(renewed / "tls.crt"), "-days", "1",
         "-subj", f"/CN={SERVER_NAME}", "-addext", f"subjectAltName=DNS:{SERVER_NAME}"],
        check=True, capture_output=True,
    )
    for name in ("tls.crt", "tls.key"):
        os.replace(renewed / name, proxy["tls"] / name)
    # The new (self-signed) certificate is what the proxy now presents.
    reply = s3_get(proxy["mtls"], proxy["tls"] / "tls.crt", proxy["client"] / "tls.crt", proxy["client"] / "tls.key")
    assert reply.startswith("HTTP/1.0 200"), reply
