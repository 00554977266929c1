"""Assertions on the manifests the chart renders (real `helm template`, no cluster).

kubernetes-validate checks each manifest against the Kubernetes schemas; these tests check what
a schema cannot: that the pieces agree with each other and with the gateway's flags.
"""

import base64
import json
import re
import subprocess

import pytest
import yaml

from conftest import CHART, Rendered, helm_binary, helm_template, render

WORKLOADS = ("Deployment", "StatefulSet", "Job", "Pod")


def pod_spec(doc):
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def container(doc, name):
    found = [c for c in pod_spec(doc)["containers"] if c["name"] == name]
    assert found, f"{doc['kind']}/{doc['metadata']['name']} has no container {name}"
    return found[0]


def helm_test_url(r):
    """The URL the `helm test` pod fetches."""
    env = r.one("Pod", "-test-gif")["spec"]["containers"][0]["env"]
    return [e["value"] for e in env if e["name"] == "URL"][0]


def flag(args, name):
    """The value following `name` in an argv list."""
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


BACKEND_FLAGS = ["--endpoint", "--bucket", "--region", "--path-style", "--access-key-file", "--secret-key-file"]
TLS_FLAGS = ["--ca-cert", "--client-cert", "--client-key"]


def secret_volumes(doc):
    """Mount path -> Secret name, for the Secret volumes of a pod's first container."""
    spec = pod_spec(doc)
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    mounts = spec["containers"][0].get("volumeMounts", [])
    return {m["mountPath"]: secrets[m["name"]] for m in mounts if m["name"] in secrets}


# --- the gateway Deployment ---------------------------------------------------------------


def test_gateway_listens_on_all_interfaces_and_probes_the_admin_port(ci_render):
    dep = ci_render.one("Deployment")
    gw = container(dep, "gateway")
    args = gw["args"]
    assert args[0] == "serve"
    assert flag(args, "--listen") == "[::]:8080"
    assert flag(args, "--admin-listen") == "[::]:9090"
    ports = {p["name"]: p["containerPort"] for p in gw["ports"]}
    assert ports == {"http": 8080, "admin": 9090}
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")]:
        assert gw[probe]["httpGet"] == {"path": path, "port": "admin"}, probe


def test_disk_cache_is_off_by_default_and_on_an_emptydir_or_a_claim_when_enabled():
    def pod(*args):
        spec = render(*args).one("Deployment")["spec"]["template"]["spec"]
        return spec, spec["containers"][0]

    spec, c = pod()
    assert "--disk-cache-dir" not in c["args"]
    assert "disk-cache" not in [v["name"] for v in spec["volumes"]]

    spec, c = pod("--set", "gateway.diskCache.enabled=true", "--set", "gateway.diskCache.maxBytes=3GiB")
    args = c["args"]
    assert args[args.index("--disk-cache-dir") + 1] == "/var/cache/gateway"
    assert args[args.index("--disk-cache-max-bytes") + 1] == "3GiB"
    assert {"name": "disk-cache", "mountPath": "/var/cache/gateway"} in c["volumeMounts"]
    assert {"name": "disk-cache", "emptyDir": {"sizeLimit": "1280Mi"}} in spec["volumes"]

    spec, _ = pod("--set", "gateway.diskCache.enabled=true", "--set", "gateway.diskCache.existingClaim=slices")
    assert {"name": "disk-cache", "persistentVolumeClaim": {"claimName": "slices"}} in spec["volumes"]


def test_protected_paths_mount_their_htpasswd_secret():
    spec = render(
        "--set", "gateway.protect[0].for=/staging/*", "--set", "gateway.protect[0].existingSecret=staff",
        "--set", "gateway.protect[0].realm=Staging",
    ).one("Deployment")["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["args"][c["args"].index("--protect") + 1] == "/staging/* /etc/gateway/protect/0/htpasswd Staging"
    assert {"name": "protect-0", "mountPath": "/etc/gateway/protect/0", "readOnly": True} in c["volumeMounts"]
    volume = [v for v in spec["volumes"] if v["name"] == "protect-0"][0]
    assert volume["secret"] == {
        "secretName": "staff", "defaultMode": 0o440, "items": [{"key": "htpasswd", "path": "htpasswd"}],
    }


def test_protected_paths_of_a_site_are_in_the_sites_file_with_their_secret():
    r = render(
        "--set", "gateway.sites[0].name=Staging", "--set", "gateway.sites[0].hosts[0]=staging.example.com",
        "--set", "gateway.sites[0].protect[0].for=/*", "--set", "gateway.sites[0].protect[0].existingSecret=staff",
    )
    toml = r.one("ConfigMap", "-sites")["data"]["sites.toml"]
    assert '[[sites.protect]]\nfor = "/*"\nhtpasswd = "/etc/gateway/protect/site0-0/htpasswd"' in toml, toml
    spec = r.one("Deployment")["spec"]["template"]["spec"]
    mount = {"name": "protect-site0-0", "mountPath": "/etc/gateway/protect/site0-0", "readOnly": True}
    assert mount in spec["containers"][0]["volumeMounts"]
    assert [v for v in spec["volumes"] if v["name"] == "protect-site0-0"][0]["secret"]["secretName"] == "staff"


def test_termination_grace_covers_the_gateways_drain():
    dep = render("--set", "gateway.shutdownDelaySeconds=7", "--set", "gateway.shutdownGraceSeconds=40").one("Deployment")
    args = container(dep, "gateway")["args"]
    assert flag(args, "--shutdown-delay") == "7s"
    assert flag(args, "--shutdown-grace") == "40s"
    assert pod_spec(dep)["terminationGracePeriodSeconds"] > 7 + 40


def test_checksum_rolls_pods_when_flags_change():
    def checksum(*args):
        return render(*args).one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    # Fixed credentials and TLS material, so only the flags differ between the renders.
    fixed = ["--set", "s3.existingSecret=creds", "--set", "backendTLS.mode=existingSecrets",
             "--set", "backendTLS.existingSecrets.client=c", "--set", "backendTLS.existingSecrets.server=s",
             "--set", "backendTLS.existingSecrets.seedClient=sc", "--set", "gateway.purge.existingSecret=t"]
    assert checksum(*fixed) == checksum(*fixed)
    assert checksum(*fixed) != checksum(*fixed, "--set", "s3.bucket=other")
    assert checksum(*fixed) != checksum(*fixed, "--set", "gateway.cache.ttl=5s")


def test_image_tag_defaults_to_app_version():
    chart = (CHART / "Chart.yaml").read_text()
    app_version = yaml.safe_load(chart)["appVersion"]
    dep = render().one("Deployment")
    assert container(dep, "gateway")["image"] == f"gateway:{app_version}"
    dep = render("--set", "image.repository=registry.example.com/gateway", "--set", "image.tag=1.2.3").one("Deployment")
    assert container(dep, "gateway")["image"] == "registry.example.com/gateway:1.2.3"


def test_replicas_come_from_the_hpa_when_autoscaling():
    r = render("--set", "autoscaling.enabled=true", "--set", "autoscaling.targetMemoryUtilizationPercentage=75")
    dep, hpa = r.one("Deployment"), r.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}
    assert "replicas" not in dep["spec"]
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 60, "memory": 75}
    assert not render().of_kind("HorizontalPodAutoscaler")
    assert render().one("Deployment")["spec"]["replicas"] == 2


def test_pods_spread_across_nodes(ci_render):
    spec = pod_spec(ci_render.one("Deployment"))
    keys = [c["topologyKey"] for c in spec["topologySpreadConstraints"]]
    assert "kubernetes.io/hostname" in keys
    assert spec["affinity"]["podAntiAffinity"]


# --- secrets are mounted, never inlined -----------------------------------------------------


def test_secrets_are_mounted_never_inlined(ci_render):
    for doc in ci_render.docs:
        if doc["kind"] not in WORKLOADS:
            continue
        for c in pod_spec(doc)["containers"]:
            args = c.get("args", []) + c.get("command", [])
            assert "--secret-key" not in args and "--access-key" not in args, f"{c['name']}: credentials in argv"
            for env in c.get("env", []):
                # MinIO reads its root credentials from env; they must come from the Secret.
                if any(word in env["name"].upper() for word in ("KEY", "PASSWORD", "SECRET", "USER")):
                    assert "valueFrom" in env and "secretKeyRef" in env["valueFrom"], f"{c['name']}: {env['name']} inlined"


def test_generated_credentials_appear_only_in_their_secret():
    code, out, err = helm_template()
    assert code == 0, err
    r = Rendered(list(yaml.safe_load_all(out)))
    secret = r.one("Secret", "-credentials")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    encoded = secret["data"]["secret-key"]
    secret_key = base64.b64decode(encoded).decode()
    assert len(secret_key) >= 32 and len(base64.b64decode(secret["data"]["access-key"])) >= 8
    assert out.count(encoded) == 1 and secret_key not in out


def test_gateway_mounts_credentials_and_client_certificate(ci_render):
    dep = ci_render.one("Deployment")
    args = container(dep, "gateway")["args"]
    mounts = secret_volumes(dep)
    if flag(args, "--credentials") == "static":
        assert flag(args, "--access-key-file").startswith("/etc/gateway/credentials/")
        assert flag(args, "--secret-key-file").startswith("/etc/gateway/credentials/")
        assert "/etc/gateway/credentials" in mounts
    else:
        assert "--secret-key-file" not in args and "/etc/gateway/credentials" not in mounts
    if "--ca-cert" in args:
        assert "/etc/gateway/tls" in mounts
        for f in TLS_FLAGS:
            assert flag(args, f).startswith("/etc/gateway/tls/")


# --- the seed hook --------------------------------------------------------------------------


def seeded(ci_render):
    """Whether this CI render seeds: off by default without the chart's MinIO (AWS with IRSA)."""
    return bool([j for j in ci_render.of_kind("Job") if j["metadata"]["name"].endswith("-seed")])


def test_seed_job_uses_the_deployments_bucket_and_tls(ci_render):
    if not seeded(ci_render):
        assert not ci_render.of_kind("StatefulSet"), "the chart's MinIO seeds by default"
        return
    dep, job = ci_render.one("Deployment"), ci_render.one("Job", "-seed")
    serve, seed = container(dep, "gateway")["args"], container(job, "seed")["args"]
    assert seed[0] == "seed"
    assert "--wait" in seed
    for f in [f for f in BACKEND_FLAGS + ["--credentials"] + TLS_FLAGS if f in serve]:
        assert flag(seed, f) == flag(serve, f), f
    assert [f for f in BACKEND_FLAGS + TLS_FLAGS if f in seed] == [f for f in BACKEND_FLAGS + TLS_FLAGS if f in serve]
    # The same files at the same places; with the chart's MinIO the seed's certificate is its
    # own identity, not the gateway's.
    seed_mounts, dep_mounts = secret_volumes(job), secret_volumes(dep)
    assert seed_mounts.keys() == dep_mounts.keys()
    if ci_render.of_kind("StatefulSet") and "/etc/gateway/tls" in dep_mounts:
        assert seed_mounts["/etc/gateway/tls"] != dep_mounts["/etc/gateway/tls"]
    assert container(job, "seed")["image"] == container(dep, "gateway")["image"]


def test_seed_is_a_hook_not_part_of_the_gateway_pods(ci_render):
    if not seeded(ci_render):
        return
    job = ci_render.one("Job", "-seed")
    ann = job["metadata"]["annotations"]
    assert set(ann["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
    assert "helm.sh/hook-weight" in ann
    assert "before-hook-creation" in ann["helm.sh/hook-delete-policy"]
    assert job["spec"]["backoffLimit"] >= 0 and job["spec"]["activeDeadlineSeconds"] > 0
    spec = pod_spec(ci_render.one("Deployment"))
    assert not spec.get("initContainers")
    assert [c["name"] for c in spec["containers"]] == ["gateway"]
    jobs = render("--set", "seed.enabled=false").of_kind("Job")
    assert [j["metadata"]["name"] for j in jobs if j["metadata"]["name"].endswith("-seed")] == []


def test_seed_purges_every_gateway_pod(ci_render):
    if not seeded(ci_render):
        return
    dep, job = ci_render.one("Deployment"), ci_render.one("Job", "-seed")
    serve, seed = container(dep, "gateway")["args"], container(job, "seed")["args"]
    token = "/etc/gateway/admin-token/token"
    assert flag(serve, "--admin-token-file") == token and flag(seed, "--admin-token-file") == token
    admin = ci_render.one("Service", "-admin")
    assert admin["spec"]["clusterIP"] == "None" and admin["spec"]["publishNotReadyAddresses"] is True
    assert admin["spec"]["selector"] == ci_render.one("Service", "gw-gateway")["spec"]["selector"]
    port = admin["spec"]["ports"][0]["port"]
    assert flag(seed, "--purge-url") == f"http://gw-gateway-admin.web.svc:{port}/purge?key=gateway.gif"
    secret = ci_render.one("Secret", "-admin-token")
    assert len(base64.b64decode(secret["data"]["token"])) >= 16
    for workload in (dep, job):
        vols = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        assert vols["admin-token"]["secret"]["secretName"] == "gw-gateway-admin-token"
    # Off: no token, no flag, no Secret.
    r = render("--set", "gateway.purge.enabled=false")
    assert "--admin-token-file" not in container(r.one("Deployment"), "gateway")["args"]
    assert "--purge-url" not in container(r.one("Job", "-seed"), "seed")["args"]
    assert not [s for s in r.of_kind("Secret") if s["metadata"]["name"].endswith("-admin-token")]
    # A Secret of one's own.
    r = render("--set", "gateway.purge.existingSecret=my-token")
    assert not [s for s in r.of_kind("Secret") if s["metadata"]["name"].endswith("-admin-token")]
    vols = {v["name"]: v for v in pod_spec(r.one("Deployment"))["volumes"]}
    assert vols["admin-token"]["secret"]["secretName"] == "my-token"


# The fields of a [[sites]] table the gateway accepts (src/config/sites.rs SiteSpec; unknown fields
# are refused at start-up).
SITE_FIELDS = {"name", "hosts", "bucket", "prefix", "index", "error_document", "spa_fallback", "cache_control",
               "error_cache_control", "list_directories", "cors_origins"}


def test_sites_become_the_gateways_sites_file():
    import tomllib
    r = render("-f", str(CHART / "ci" / "full-values.yaml"))
    cm = r.one("ConfigMap", "-sites")
    sites = tomllib.loads(cm["data"]["sites.toml"])
    assert sites["default_site"] == "www"
    www, docs = sites["sites"]
    assert www == {"name": "www", "hosts": ["gifs.example.com", "www.example.com"], "spa_fallback": "index.html"}
    assert docs["bucket"] == "docs" and docs["list_directories"] is True and docs["cors_origins"] == ["https://example.com"]
    for site in sites["sites"]:
        assert set(site) <= SITE_FIELDS, set(site) - SITE_FIELDS
    dep = r.one("Deployment")
    assert flag(container(dep, "gateway")["args"], "--sites") == "/etc/gateway/sites/sites.toml"
    vols = {v["name"]: v for v in pod_spec(dep)["volumes"]}
    assert vols["sites"]["configMap"]["name"] == cm["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in container(dep, "gateway")["volumeMounts"]}
    assert mounts["sites"] == "/etc/gateway/sites"
    # A quote in a value stays a valid TOML string.
    r = render("--set", "gateway.sites[0].name=a", "--set", "gateway.sites[0].hosts[0]=a.test",
               "--set-string", "gateway.sites[0].cacheControl=public; x=\"y\"")
    assert tomllib.loads(r.one("ConfigMap", "-sites")["data"]["sites.toml"])["sites"][0]["cache_control"] == 'public; x="y"'
    # None: no file, no flag.
    assert not [c for c in render().of_kind("ConfigMap") if c["metadata"]["name"].endswith("-sites")]
    assert "--sites" not in container(render().one("Deployment"), "gateway")["args"]


@pytest.mark.parametrize("mode", ["sts-certificate", "chain"])
def test_keyless_credentials_mount_no_key(mode):
    r = render("--set", "minio.enabled=false", "--set", "externalS3.endpoint=https://minio.example.com:9000",
               "--set", "backendTLS.mode=existingSecrets", "--set", "backendTLS.existingSecrets.client=client-tls",
               "--set", f"s3.credentials={mode}", "--set", "seed.enabled=true")
    for workload, name in ((r.one("Deployment"), "gateway"), (r.one("Job", "-seed"), "seed")):
        args = container(workload, name)["args"]
        assert flag(args, "--credentials") == mode
        assert "--access-key-file" not in args and "--secret-key-file" not in args
        vols = {v["name"] for v in pod_spec(workload)["volumes"]}
        assert "credentials" not in vols, vols
    assert not [s for s in r.of_kind("Secret") if s["metadata"]["name"].endswith("-credentials")]
    # With an external S3, static stays the default, with the keys mounted.
    external = render("-f", str(CHART / "ci" / "external-s3-values.yaml"), "--set", "s3.credentials=")
    args = container(external.one("Deployment"), "gateway")["args"]
    assert flag(args, "--credentials") == "static" and "--secret-key-file" in args


def test_seed_writes_where_the_gateway_serves_from():
    r = render("--set", "s3.prefix=site/")
    assert flag(container(r.one("Deployment"), "gateway")["args"], "--prefix") == "site/"
    assert flag(container(r.one("Job", "-seed"), "seed")["args"], "--key") == "site/gateway.gif"
    # ... and the helm test asks for it relative to the prefix.
    assert helm_test_url(r).endswith(":80/gateway.gif")
    assert flag(container(render().one("Job", "-seed"), "seed")["args"], "--key") == "gateway.gif"


# --- security -------------------------------------------------------------------------------


def test_every_container_is_restricted(ci_render):
    for doc in ci_render.docs:
        if doc["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(doc)
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (where, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (where, c["name"])
            assert c["resources"]["limits"]["memory"], (where, c["name"])
            assert ":" in c["image"] and not c["image"].endswith(":latest"), (where, c["image"])


def test_pods_meet_the_restricted_pod_security_standard(ci_render):
    """The rest of the restricted profile (the Terraform module labels its namespace with it)."""
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    for doc in ci_render.docs:
        if doc["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(doc)
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host), (where, host)
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= allowed_volumes, (where, volume["name"], kinds)
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert not sc.get("privileged") and not c.get("ports", [{}])[0].get("hostPort"), (where, c["name"])
            assert not sc.get("capabilities", {}).get("add"), (where, c["name"])
            assert sc.get("runAsUser", spec["securityContext"].get("runAsUser", 0)) != 0, (where, c["name"])


# Required fields of the CRD-based objects (kubernetes-validate has no schema for them).
CRD_REQUIRED = {
    ("cert-manager.io/v1", "Certificate"): ["spec.secretName", "spec.issuerRef.name", "spec.issuerRef.kind"],
    ("cert-manager.io/v1", "Issuer"): [],
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector.matchLabels", "spec.endpoints"],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["spec.groups"],
}


def test_crd_objects_are_well_formed(ci_render):
    for doc in ci_render.docs:
        group = doc["apiVersion"].rpartition("/")[0]
        if "." not in group or group.endswith(".k8s.io"):
            continue  # a built-in API group: kubernetes-validate checks it
        key = (doc["apiVersion"], doc["kind"])
        assert key in CRD_REQUIRED, f"unchecked custom resource {key}"
        for path in CRD_REQUIRED[key]:
            node = doc
            for part in path.split("."):
                assert part in node, f"{doc['kind']}/{doc['metadata']['name']} lacks {path}"
                node = node[part]
            assert node, f"{doc['kind']}/{doc['metadata']['name']}: {path} is empty"
        if doc["kind"] == "Issuer":
            assert len(set(doc["spec"]) & {"selfSigned", "ca", "acme", "vault", "venafi"}) == 1, doc["spec"]
        if doc["kind"] == "PrometheusRule":
            for group in doc["spec"]["groups"]:
                assert group["name"] and group["rules"]
                for rule in group["rules"]:
                    assert rule["expr"] and (rule.get("alert") or rule.get("record")), rule
                    assert re.fullmatch(r"([0-9]+(ms|s|m|h|d))*", rule.get("for", "")), rule
        if doc["kind"] == "Certificate":
            for duration in ("duration", "renewBefore"):
                if duration in doc["spec"]:
                    assert re.fullmatch(r"([0-9]+(h|m|s))+", doc["spec"][duration]), doc["spec"][duration]


# --- MinIO ----------------------------------------------------------------------------------


def test_minio_terminates_tls_and_issues_credentials_for_certificates():
    r = render()
    sts = r.one("StatefulSet")
    minio = container(sts, "minio")
    assert [c["name"] for c in pod_spec(sts)["containers"]] == ["minio"]
    assert flag(minio["args"], "--address") == ":9000"
    assert flag(minio["args"], "--console-address").startswith("127.0.0.1:")
    env = {e["name"]: e.get("value") for e in minio["env"]}
    assert env["MINIO_IDENTITY_TLS_ENABLE"] == "on"
    # MinIO's certs-dir layout, from the server certificate's Secret.
    certs = flag(minio["args"], "--certs-dir")
    mount = [m for m in minio["volumeMounts"] if m["mountPath"] == certs][0]
    volume = [v for v in pod_spec(sts)["volumes"] if v["name"] == mount["name"]][0]["secret"]
    assert volume["secretName"] == "gw-gateway-minio-tls"
    layout = {"tls.crt": "public.crt", "tls.key": "private.key", "ca.crt": "CAs/ca.crt"}
    assert {i["key"]: i["path"] for i in volume["items"]} == layout
    svc = r.one("Service", "-minio")
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["s3"]
    assert {p["name"]: p["containerPort"] for p in minio["ports"]} == {"s3": 9000}
    # The gateway's endpoint is that Service, by the name in MinIO's certificate.
    endpoint = flag(container(r.one("Deployment"), "gateway")["args"], "--endpoint")
    assert endpoint == "https://gw-gateway-minio.web.svc.cluster.local:9000"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    # A read-only root filesystem, with its own emptyDir at /tmp.
    empty_dirs = {v["name"] for v in pod_spec(sts)["volumes"] if "emptyDir" in v}
    tmp = [m for m in minio["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1 and tmp[0]["name"] in empty_dirs and "subPath" not in tmp[0]
    assert minio["volumeMounts"][0]["name"] == "data"
    # HTTPS probes (the kubelet presents no certificate, which MinIO allows).
    for probe, path in (("livenessProbe", "/minio/health/live"), ("readinessProbe", "/minio/health/ready")):
        assert minio[probe]["httpGet"] == {"path": path, "port": "s3", "scheme": "HTTPS"}
    # Its own ServiceAccount, without a token.
    sa = pod_spec(sts)["serviceAccountName"]
    assert sa == "gw-gateway-minio" and sa != pod_spec(r.one("Deployment"))["serviceAccountName"]
    assert r.one("ServiceAccount", "-minio")["automountServiceAccountToken"] is False
    assert pod_spec(sts)["automountServiceAccountToken"] is False


def secret_readers(r, secret):
    """(kind, name) of every workload whose pods can read `secret`: a volume (plain or
    projected), an env reference or envFrom."""
    readers = set()
    for doc in r.docs:
        if doc["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(doc)
        names = set()
        for v in spec.get("volumes", []):
            if "secret" in v:
                names.add(v["secret"]["secretName"])
            for source in v.get("projected", {}).get("sources", []):
                if "secret" in source:
                    names.add(source["secret"]["name"])
        for c in spec["containers"] + spec.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
            for e in c.get("envFrom", []):
                if "secretRef" in e:
                    names.add(e["secretRef"]["name"])
        if secret in names:
            readers.add((doc["kind"], doc["metadata"]["name"]))
    return readers


@pytest.mark.parametrize("values", ["default-values.yaml", "full-values.yaml", "cert-manager-values.yaml"])
def test_only_minio_and_the_setup_job_can_read_the_root_credentials(values):
    r = render("-f", str(CHART / "ci" / values))
    readers = secret_readers(r, "gw-gateway-credentials")
    kinds = sorted(kind for kind, _ in readers)
    assert kinds == ["Job", "StatefulSet"], readers
    assert [n for k, n in readers if k == "Job"][0].startswith("gw-gateway-setup-")
    # No RBAC object lets a pod read Secrets through the API either.
    assert not [d for d in r.docs if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def test_the_default_gateway_holds_no_secret_key():
    r = render()
    dep = r.one("Deployment")
    args = container(dep, "gateway")["args"]
    assert flag(args, "--credentials") == "sts-certificate"
    assert "--access-key-file" not in args and "--secret-key-file" not in args
    # Its only Secrets: its own client certificate and the purge token.
    assert set(secret_volumes(dep).values()) == {"gw-gateway-client-tls", "gw-gateway-admin-token"}
    assert not [e for c in pod_spec(dep)["containers"] for e in c.get("env", []) if "valueFrom" in e]
    # The seed job neither: its own certificate, no key.
    job = r.one("Job", "-seed")
    assert "--secret-key-file" not in container(job, "seed")["args"]
    assert set(secret_volumes(job).values()) == {"gw-gateway-seed-tls", "gw-gateway-admin-token"}


def policies(r):
    return {name.removesuffix(".json"): json.loads(doc) for name, doc in r.one("ConfigMap", "-policies")["data"].items()}


def allowed(policy):
    """{action: set(resources)} a policy allows."""
    out = {}
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow" and "Condition" not in st
        for action in st["Action"]:
            out.setdefault(action, set()).update(st["Resource"])
    return out


def test_policies_are_least_privilege_and_named_by_the_certificates():
    r = render("--set", "s3.prefix=site/")
    p = policies(r)
    assert set(p) == {"gw-gateway-read", "gw-gateway-seed"}
    assert allowed(p["gw-gateway-read"]) == {
        "s3:GetObject": {"arn:aws:s3:::gifs/site/*"},
        "s3:ListBucket": {"arn:aws:s3:::gifs"},
        "s3:ListenBucketNotification": {"arn:aws:s3:::gifs"},
    }
    assert allowed(p["gw-gateway-seed"]) == {
        "s3:GetObject": {"arn:aws:s3:::gifs/site/gateway.gif"},
        "s3:PutObject": {"arn:aws:s3:::gifs/site/gateway.gif"},
        "s3:CreateBucket": {"arn:aws:s3:::gifs"},
        "s3:ListBucket": {"arn:aws:s3:::gifs"},
    }
    # Without change events, no ListenBucketNotification; several sites, each its own bucket
    # and prefix (s3.bucket and s3.prefix when a site names none).
    r = render("--set", "gateway.bucketEvents=off", "--set", "s3.prefix=main/", "--set", "gateway.sites[0].name=a",
               "--set", "gateway.sites[0].hosts[0]=a.example.com", "--set", "gateway.sites[0].bucket=other",
               "--set", "gateway.sites[0].prefix=a/",
               "--set", "gateway.sites[1].name=b", "--set", "gateway.sites[1].hosts[0]=b.example.com",
               "--set", "gateway.sites[2].name=c", "--set", "gateway.sites[2].hosts[0]=c.example.com",
               "--set", "gateway.sites[2].prefix=")
    assert allowed(policies(r)["gw-gateway-read"]) == {
        "s3:GetObject": {"arn:aws:s3:::gifs/main/*", "arn:aws:s3:::gifs/*", "arn:aws:s3:::other/a/*"},
        "s3:ListBucket": {"arn:aws:s3:::gifs", "arn:aws:s3:::other"},
    }
    # The certificates' common names are the policies' names (helm mode: read from the PEM).
    for secret, name in (("-client-tls", "gw-gateway-read"), ("-seed-tls", "gw-gateway-seed")):
        pem = base64.b64decode(render().one("Secret", secret)["data"]["tls.crt"])
        subject = openssl("x509", "-noout", "-subject", stdin=pem.decode()).stdout
        assert f"CN = {name}" in subject or f"CN={name}" in subject, subject
    cm = render("-f", str(CHART / "ci" / "cert-manager-values.yaml"))
    names = {c["spec"]["secretName"]: c["spec"].get("commonName") for c in cm.of_kind("Certificate")}
    assert names["gw-gateway-client-tls"] == "gw-gateway-read" and names["gw-gateway-seed-tls"] == "gw-gateway-seed"


def test_setup_job_adds_the_policies_with_the_root_credentials():
    r = render()
    job = r.setup_jobs()[0]
    # Not a hook: `helm install --wait` waits for ready gateways before post-install hooks, and
    # the gateways are ready only once their policy exists.
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})
    args = container(job, "setup")["args"]
    assert args[:3] == ["policies", "--from", "/etc/gateway/policies"]
    assert flag(args, "--credentials") == "static"
    assert flag(args, "--endpoint") == flag(container(r.one("Deployment"), "gateway")["args"], "--endpoint")
    assert "--client-cert" not in args
    mounts = secret_volumes(job)
    assert mounts["/etc/minio/root"] == "gw-gateway-credentials"
    assert flag(args, "--access-key-file").startswith("/etc/minio/root/")
    # A policy change is a new Job (a Job's pod template cannot change); no change, the same.
    same = [j["metadata"]["name"] for j in render().setup_jobs()]
    other = [j["metadata"]["name"] for j in render("--set", "s3.prefix=x/").setup_jobs()]
    assert same == [job["metadata"]["name"]] and other != same
    assert not render("-f", str(CHART / "ci" / "external-s3-values.yaml")).setup_jobs()


def test_minio_disabled_removes_every_minio_object():
    r = render("-f", str(CHART / "ci" / "external-s3-values.yaml"))
    leftovers = [
        (d["kind"], d["metadata"]["name"])
        for d in r.docs
        if "minio" in d["metadata"]["name"] or d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "minio"
    ]
    assert leftovers == []
    assert not r.of_kind("StatefulSet") and not r.of_kind("PersistentVolumeClaim")
    args = container(r.one("Deployment"), "gateway")["args"]
    assert flag(args, "--endpoint") == "https://minio.storage.svc.cluster.local:9000"
    secrets = [d["metadata"]["name"] for d in r.of_kind("Secret")]
    assert secrets == ["gw-gateway-admin-token"], "no Secret but the purge token is generated for an external S3"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "minio.enabled=false", "--set", "s3.existingSecret=x", "--set", "backendTLS.mode=none",
          "--set", "externalS3.endpoint=minio:9000"], "externalS3.endpoint"),
        (["--set", "minio.enabled=false", "--set", "externalS3.endpoint=https://s3.example.com"], "s3.existingSecret"),
        (["--set", "s3.credentials=static"], "s3.credentials"),
        (["--set", "backendTLS.mode=existingSecrets", "--set", "backendTLS.existingSecrets.client=c",
          "--set", "backendTLS.existingSecrets.server=s"], "seedClient"),
        (["--set", "minio.enabled=false", "--set", "externalS3.endpoint=https://s3.example.com",
          "--set", "s3.credentials=sts-certificate", "--set", "backendTLS.mode=none"], "backendTLS.mode"),
        (["--set", "minio.enabled=false", "--set", "externalS3.endpoint=https://s3.example.com",
          "--set", "s3.existingSecret=x"], "backendTLS.mode"),
        (["--set", "backendTLS.mode=none"], "backendTLS.mode"),
        (["--set", "backendTLS.mode=existingSecrets"], "existingSecrets.client"),
        (["--set", "backendTLS.mode=wrong"], "backendTLS.mode"),
        # The deprecated name is checked as the new one is.
        (["--set", "tls.mode=none"], "tls.mode"),
        (["--set", "tls.mode=wrong"], "tls.mode"),
        (["--set", "minio.enabled=false", "--set", "externalS3.endpoint=https://s3.example.com",
          "--set", "s3.existingSecret=x", "--set", "tls.mode=helm"], "tls.mode"),
        (["--set", "tls.mode=existingSecrets", "--set", "tls.existingSecrets.client=c",
          "--set", "tls.existingSecrets.server=s"], "seedClient"),
        (["--set", "unknownKey=1"], "unknownKey"),
        (["--set", "replicaCount=two"], "replicaCount"),
        (["--set", "gateway.cache.ttl=soon"], "gateway.cache.ttl"),
        (["--set", "s3.bucket=Not_A_Bucket"], "s3.bucket"),
        (["--set", "gateway.logFormat=xml"], "gateway.logFormat"),
        (["--set", "s3.prefix=site"], "s3.prefix"),
        (["--set", "s3.prefix=/site/"], "s3.prefix"),
        # MinIO refuses DurationSeconds outside 15 min .. 365 days (GetExpiryDuration).
        (["--set", "gateway.backend.stsDuration=5m"], "stsDuration"),
        (["--set", "gateway.backend.stsDuration=8761h"], "stsDuration"),
    ],
)
def test_schema_rejects_bad_values(args, message):
    code, _, err = helm_template(*args)
    assert code != 0, f"{args} should be rejected"
    assert "schema" in err and message in err, err


def test_minio_credentials_can_be_supplied():
    r = render("--set", "s3.existingSecret=my-creds")
    assert not [d for d in r.of_kind("Secret") if d["metadata"]["name"].endswith("-credentials")]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(r.one("StatefulSet"), "minio")["env"] if "valueFrom" in e}
    assert env["MINIO_ROOT_USER"] == {"name": "my-creds", "key": "access-key"}
    assert secret_readers(r, "my-creds") == {("StatefulSet", "gw-gateway-minio")} | {
        (j["kind"], j["metadata"]["name"]) for j in r.setup_jobs()
    }


# --- mTLS material --------------------------------------------------------------------------


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True)


def test_generated_certificates_chain_to_one_ca(tmp_path):
    r = render()
    client = r.one("Secret", "-client-tls")["data"]
    seed = r.one("Secret", "-seed-tls")["data"]
    server = r.one("Secret", "-minio-tls")["data"]
    files = {}
    for name, data in [("client", client), ("seed", seed), ("server", server)]:
        for key, value in data.items():
            path = tmp_path / f"{name}-{key}"
            path.write_bytes(base64.b64decode(value))
            files[f"{name}-{key}"] = str(path)
    assert (tmp_path / "client-ca.crt").read_bytes() == (tmp_path / "server-ca.crt").read_bytes()
    ca = files["client-ca.crt"]
    for name in ("client", "seed"):
        ok = openssl("verify", "-CAfile", ca, "-purpose", "sslclient", files[f"{name}-tls.crt"])
        assert ok.returncode == 0, ok.stdout + ok.stderr
    ok = openssl("verify", "-CAfile", ca, "-purpose", "sslserver", files["server-tls.crt"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    text = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", files["server-tls.crt"]).stdout
    assert "DNS:gw-gateway-minio.web.svc.cluster.local" in text, text
    # Each key belongs to its certificate.
    for name in ("client", "seed", "server"):
        cert_pub = openssl("x509", "-noout", "-pubkey", "-in", files[f"{name}-tls.crt"]).stdout
        key_pub = openssl("pkey", "-pubout", "-in", files[f"{name}-tls.key"]).stdout
        assert cert_pub and cert_pub == key_pub, name


def test_cert_manager_certificates_match_what_the_pods_mount():
    r = render("-f", str(CHART / "ci" / "cert-manager-values.yaml"))
    certs = {c["spec"]["secretName"]: c for c in r.of_kind("Certificate")}
    issuers = {i["metadata"]["name"]: i for i in r.of_kind("Issuer")}
    for cert in certs.values():
        ref = cert["spec"]["issuerRef"]
        assert ref["kind"] == "Issuer" and ref["name"] in issuers, ref
        assert cert["apiVersion"] == "cert-manager.io/v1"
    ca = [c for c in certs.values() if c["spec"].get("isCA")]
    assert len(ca) == 1 and issuers[ca[0]["spec"]["issuerRef"]["name"]]["spec"] == {"selfSigned": {}}
    client = certs[secret_volumes(r.one("Deployment"))["/etc/gateway/tls"]]
    assert "client auth" in client["spec"]["usages"]
    sts = r.one("StatefulSet")
    server_secret = [v["secret"]["secretName"] for v in pod_spec(sts)["volumes"] if v["name"] == "certs"][0]
    seed = certs[secret_volumes(r.one("Job", "-seed"))["/etc/gateway/tls"]]
    assert "client auth" in seed["spec"]["usages"] and seed is not client
    server = certs[server_secret]
    assert "server auth" in server["spec"]["usages"]
    host = flag(container(r.one("Deployment"), "gateway")["args"], "--endpoint").split("//")[1].split(":")[0]
    assert host in server["spec"]["dnsNames"]
    assert not [s for s in r.of_kind("Secret") if s["type"] == "kubernetes.io/tls"], "cert-manager makes the TLS Secrets"


def test_cert_manager_with_an_existing_issuer():
    r = render("--set", "backendTLS.mode=certManager", "--set", "backendTLS.certManager.issuerRef.name=corp-ca",
               "--set", "backendTLS.certManager.issuerRef.kind=ClusterIssuer")
    assert not r.of_kind("Issuer")
    for cert in r.of_kind("Certificate"):
        assert cert["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


# --- exposure and monitoring ----------------------------------------------------------------


def test_services_target_named_ports_of_their_pods(ci_render):
    pods = [d for d in ci_render.docs if d["kind"] in ("Deployment", "StatefulSet")]
    for svc in ci_render.of_kind("Service"):
        selector = svc["spec"]["selector"]
        targets = [p for p in pods if selector.items() <= p["spec"]["template"]["metadata"]["labels"].items()]
        assert len(targets) == 1, svc["metadata"]["name"]
        names = {p["name"] for c in pod_spec(targets[0])["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in names, (svc["metadata"]["name"], port)


def test_ingress_routes_to_the_gateway_service():
    r = render("-f", str(CHART / "ci" / "full-values.yaml"))
    ing, svc = r.one("Ingress"), r.one("Service", "gw-gateway")
    assert ing["spec"]["ingressClassName"] == "nginx"
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": svc["metadata"]["name"], "port": {"name": "http"}}
    assert ing["spec"]["tls"][0]["hosts"] == ["gifs.example.com"]


def test_metrics_scraping():
    r = render("-f", str(CHART / "ci" / "full-values.yaml"))
    sm, svc, admin = r.one("ServiceMonitor"), r.one("Service", "gw-gateway"), r.one("Service", "-admin")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    # The admin port is on its own Service, never on the one the ingress exposes.
    assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]
    assert [p["name"] for p in admin["spec"]["ports"]] == ["admin"] and admin["spec"]["publishNotReadyAddresses"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= admin["metadata"]["labels"].items()
    assert not sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    endpoint = sm["spec"]["endpoints"][0]
    assert endpoint["port"] == "admin" and endpoint["path"] == "/metrics" and endpoint["scheme"] == "http"
    assert endpoint["honorLabels"] is False and endpoint["relabelings"] == [{"targetLabel": "cluster", "replacement": "eu-1"}]
    plain = render("--set", "metrics.serviceMonitor.enabled=true").one("ServiceMonitor")
    assert "relabelings" not in plain["spec"]["endpoints"][0]
    tuned = render("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.serviceMonitor.namespace=monitoring",
                   "--set", "metrics.serviceMonitor.relabelings[0].targetLabel=cluster",
                   "--set", "metrics.serviceMonitor.relabelings[0].replacement=eu1",
                   "--set", "metrics.serviceMonitor.metricRelabelings[0].action=drop",
                   "--set", "metrics.serviceMonitor.metricRelabelings[0].regex=process_.*",
                   "--set", "metrics.serviceMonitor.metricRelabelings[0].sourceLabels[0]=__name__").one("ServiceMonitor")
    assert tuned["metadata"]["namespace"] == "monitoring"
    assert tuned["spec"]["namespaceSelector"]["matchNames"] == ["web"]
    assert tuned["spec"]["endpoints"][0]["relabelings"] == [{"targetLabel": "cluster", "replacement": "eu1"}]
    assert tuned["spec"]["endpoints"][0]["metricRelabelings"][0]["action"] == "drop"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert "prometheus.io/scrape" not in r.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    # Without the ServiceMonitor, the pods carry scrape annotations for the admin port.
    ann = render().one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9090"
    assert not render().of_kind("ServiceMonitor")


def test_dashboard_configmap_holds_the_dashboard():
    cm = render("-f", str(CHART / "ci" / "full-values.yaml")).one("ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(cm["data"]["gateway.json"])
    assert shipped == json.loads((CHART / "dashboards" / "gateway.json").read_text())
    assert shipped["panels"]


def test_network_policies_follow_the_ports():
    r = render("-f", str(CHART / "ci" / "full-values.yaml"))
    policies = {p["metadata"]["name"]: p for p in r.of_kind("NetworkPolicy")}
    gw = policies["gw-gateway"]["spec"]
    ports = {rule["ports"][0]["port"]: rule["from"] for rule in gw["ingress"]}
    assert ports["http"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert ports["admin"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    egress = policies["gw-gateway-egress"]["spec"]["egress"]
    # DNS, MinIO, and the gateways' admin port (the seed job's purge).
    assert {p["port"] for rule in egress for p in rule["ports"]} == {53, 9090, 9000}
    egress_from = policies["gw-gateway-egress"]["spec"]["podSelector"]["matchExpressions"]
    assert {"gateway", "seed", "setup"} == set([e for e in egress_from if e["key"] == "app.kubernetes.io/component"][0]["values"])
    admin_from = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in ports["admin"]
                  if "podSelector" in peer}
    assert admin_from == {"seed", "test"}, admin_from
    minio = policies["gw-gateway-minio"]["spec"]
    assert minio["egress"] == [] and minio["ingress"][0]["ports"] == [{"port": "s3", "protocol": "TCP"}]
    admitted = minio["ingress"][0]["from"][0]["podSelector"]["matchExpressions"]
    assert set([e for e in admitted if e["key"] == "app.kubernetes.io/component"][0]["values"]) == {"gateway", "seed", "setup"}
    external = render("-f", str(CHART / "ci" / "external-s3-values.yaml"))
    egress = external.one("NetworkPolicy", "-egress")["spec"]["egress"]
    assert {p["port"] for rule in egress for p in rule["ports"]} == {53, 9000, 9090}


def test_helm_test_fetches_the_gif_through_the_service(ci_render):
    pod = ci_render.one("Pod", "-test-gif")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    assert helm_test_url(ci_render) == "http://gw-gateway.web.svc.cluster.local:80/gateway.gif"
    assert '"200 image/gif"' in c["args"][0]


def test_pdb_and_service_account(ci_render):
    pdb = ci_render.one("PodDisruptionBudget")
    dep = ci_render.one("Deployment")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    sa = [s for s in ci_render.of_kind("ServiceAccount") if not s["metadata"]["name"].endswith("-minio")]
    assert len(sa) == 1 and pod_spec(dep)["serviceAccountName"] == sa[0]["metadata"]["name"]
    assert all(s["automountServiceAccountToken"] is False for s in ci_render.of_kind("ServiceAccount"))


def test_standard_labels(ci_render):
    for doc in ci_render.docs:
        labels = doc["metadata"]["labels"]
        for key in ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"):
            assert key in labels, (doc["kind"], doc["metadata"]["name"], key)
        assert doc["metadata"]["namespace"] == "web", (doc["kind"], doc["metadata"]["name"])


def test_every_value_is_documented_in_the_chart_readme():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = [line.split("`")[1] for line in (CHART / "README.md").read_text().splitlines() if line.startswith("| `")]

    # Maps documented as a whole: Kubernetes objects passed through as they are.
    opaque = {"resources", "podSecurityContext", "securityContext"}

    def leaves(node, path=()):
        if isinstance(node, dict) and node and not (path and path[-1] in opaque):
            for key, child in node.items():
                yield from leaves(child, path + (key,))
        else:
            yield ".".join(path)

    for row in rows:
        node = values
        for part in row.split("."):
            assert isinstance(node, dict) and part in node, f"README documents {row}, which values.yaml lacks"
            node = node[part]
    undocumented = [leaf for leaf in leaves(values) if not any(leaf == r or leaf.startswith(r + ".") for r in rows)]
    assert undocumented == []


# --- conventions of the reference charts -----------------------------------------------------


def test_usable_as_a_subchart_with_a_global_registry():
    r = render("--set", "global.imageRegistry=registry.example.com", "--set", "enabled=true")
    images = {c["image"] for d in r.docs if d["kind"] in WORKLOADS for c in pod_spec(d)["containers"]
              if c["name"] in ("gateway", "seed", "setup")}
    assert images == {"registry.example.com/gateway:0.1.0"}, images
    # global.imageRegistry replaces every registry (a mirror); a digest pins the image whatever the tag.
    digest = "sha256:" + "ab" * 32
    r = render("--set", "global.imageRegistry=registry.example.com", "--set", "image.registry=mirror.example.com",
               "--set", f"image.digest={digest}", "--set", "image.tag=9.9.9")
    assert container(r.one("Deployment"), "gateway")["image"] == f"registry.example.com/gateway@{digest}"
    r = render("--set", "image.registry=mirror.example.com")
    assert container(r.one("Deployment"), "gateway")["image"] == "mirror.example.com/gateway:0.1.0"
    code, _, err = helm_template("--set", "image.digest=latest")
    assert code != 0 and "image.digest" in err


def test_common_labels_and_annotations_on_every_object():
    r = render("-f", str(CHART / "ci" / "full-values.yaml"), "--set", "commonLabels.team=web",
               "--set", "commonAnnotations.owner=web", "--set", "service.annotations.owner=edge")
    for doc in r.docs:
        where = (doc["kind"], doc["metadata"]["name"])
        assert doc["metadata"]["labels"]["team"] == "web", where
        annotations = doc["metadata"]["annotations"]
        # An object's own annotations win; the chart's hooks keep theirs.
        assert annotations["owner"] == ("edge" if where == ("Service", "gw-gateway") else "web"), where
    assert r.one("Job", "-seed")["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert r.one("Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    code, _, err = helm_template("--set", "commonLabels.app\\.kubernetes\\.io/name=x")
    assert code != 0 and "commonLabels" in err


def test_deployment_knobs_of_the_reference_charts():
    r = render("--set", "revisionHistoryLimit=3", "--set", "updateStrategy.type=Recreate",
               "--set", "updateStrategy.rollingUpdate=null", "--set", "probes.readiness.periodSeconds=7",
               "--set", "probes.liveness.initialDelaySeconds=4",
               "--set", "extraEnv[0].name=RUST_BACKTRACE", "--set-string", "extraEnv[0].value=1",
               "--set", "extraVolumes[0].name=extra", "--set", "extraVolumes[0].emptyDir.sizeLimit=1Mi",
               "--set", "extraVolumeMounts[0].name=extra", "--set", "extraVolumeMounts[0].mountPath=/extra")
    dep = r.one("Deployment")
    gw = container(dep, "gateway")
    assert dep["spec"]["revisionHistoryLimit"] == 3 and dep["spec"]["strategy"] == {"type": "Recreate"}
    assert gw["readinessProbe"]["periodSeconds"] == 7 and gw["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gw["livenessProbe"]["initialDelaySeconds"] == 4 and gw["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gw["env"] == [{"name": "RUST_BACKTRACE", "value": "1"}]
    assert {"name": "extra", "mountPath": "/extra"} in gw["volumeMounts"]
    assert {"name": "extra", "emptyDir": {"sizeLimit": "1Mi"}} in pod_spec(dep)["volumes"]
    # The defaults: a surge, nobody taken down first.
    default = render().one("Deployment")["spec"]
    assert default["strategy"]["rollingUpdate"]["maxUnavailable"] == 0 and default["revisionHistoryLimit"] == 5
    code, _, err = helm_template("--set", "probes.readiness.periodSeconds=0")
    assert code != 0 and "probes" in err


def test_hpa_behavior_and_pdb_min_available():
    r = render("--set", "autoscaling.enabled=true",
               "--set", "autoscaling.behavior.scaleDown.stabilizationWindowSeconds=600",
               "--set", "podDisruptionBudget.minAvailable=50%")
    assert r.one("HorizontalPodAutoscaler")["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 600}}
    pdb = r.one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == "50%" and "maxUnavailable" not in pdb
    assert render().one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert "behavior" not in render("--set", "autoscaling.enabled=true").one("HorizontalPodAutoscaler")["spec"]


def test_minio_on_an_existing_claim():
    sts = render("--set", "minio.persistence.existingClaim=minio-data").one("StatefulSet")
    assert "volumeClaimTemplates" not in sts["spec"]
    data = [v for v in pod_spec(sts)["volumes"] if v["name"] == "data"]
    assert data == [{"name": "data", "persistentVolumeClaim": {"claimName": "minio-data"}}]
    assert render().one("StatefulSet")["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_chart_metadata_for_artifact_hub():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["maintainers"] and chart["kubeVersion"]
    ann = chart["annotations"]
    assert ann["artifacthub.io/license"] == "Apache-2.0"
    images = {i["name"]: i["image"] for i in yaml.safe_load(ann["artifacthub.io/images"])}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert images["gateway"] == f"{values['image']['repository']}:{chart['appVersion']}"
    for name, image in (("minio", values["minio"]["image"]), ("curl", values["tests"]["image"])):
        assert images[name] == f"{image['registry']}/{image['repository']}:{image['tag']}"


def test_generated_certificates_record_their_expiry_and_renew_within_the_window(tmp_path):
    """backendTLS.mode=helm: each generated TLS Secret carries its certificates' end (825 days on);
    an upgrade renews them once that end is within backendTLS.helm.renewBeforeDays. `helm template`
    cannot read a cluster, so the decision (a pure helper) is rendered through a probe chart
    that includes the chart's own helpers."""
    import datetime

    r = render()
    ends = {s["metadata"]["annotations"]["gateway/not-after"] for s in r.of_kind("Secret") if s["type"] == "kubernetes.io/tls"}
    assert len(ends) == 1 and len(r.of_kind("Secret")) >= 3
    end = datetime.datetime.fromisoformat(ends.pop().replace("Z", "+00:00"))
    days = (end - datetime.datetime.now(datetime.timezone.utc)).days
    assert 823 <= days <= 825, days

    probe = tmp_path / "probe"
    (probe / "templates").mkdir(parents=True)
    (probe / "Chart.yaml").write_text("apiVersion: v2\nname: gateway\nversion: 0.0.1\n")
    (probe / "templates" / "_helpers.tpl").write_text((CHART / "templates" / "_helpers.tpl").read_text())
    now = datetime.datetime.now(datetime.timezone.utc)
    cases = {
        "unknown": "",  # a Secret from a chart version that did not record it
        "past": "2020-01-01T00:00:00Z",
        "in10days": (now + datetime.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "in40days": (now + datetime.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "in800days": (now + datetime.timedelta(days=800)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    lines = [f'{k}: {{{{ include "gateway.tlsRenewDue" (dict "notAfter" "{v}" "renewBeforeDays" 30) | quote }}}}'
             for k, v in cases.items()]
    (probe / "templates" / "probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n" + "".join(f"  {line}\n" for line in lines))
    out = subprocess.run([helm_binary(), "template", "p", str(probe)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    due = yaml.safe_load(out.stdout)["data"]
    assert due == {"unknown": "true", "past": "true", "in10days": "true", "in40days": "", "in800days": ""}, due


def render_notes(tmp_path, *args):
    """NOTES.txt as `helm install` prints it: `helm template` leaves it out, so a copy of the
    chart carries it as a ConfigMap's data."""
    import shutil

    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text('{{- define "notes" }}' + notes + "{{- end }}")
    (chart / "templates" / "notes.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n{{ include "notes" . | indent 4 }}\n')
    out = subprocess.run([helm_binary(), "template", "gw", str(chart), "--namespace", "web", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d and d["metadata"]["name"] == "notes"][0]["data"]["notes"]


def test_notes_name_the_seeded_object_and_the_admin_service(tmp_path):
    notes = render_notes(tmp_path, "--set", "s3.prefix=site/")
    assert "s3://gifs/site/gateway.gif" in notes, notes
    assert "http://gw-gateway-admin.web.svc.cluster.local:9090/metrics" in notes, notes
    assert "helm test gw -n web" in notes


@pytest.mark.parametrize(
    "settings",
    [
        # An external S3 with no client certificate: the default backendTLS.mode (helm) would
        # be refused there, so the schema must read the mode from the old name.
        {"minio.enabled": "false", "externalS3.endpoint": "https://s3.example.com", "s3.existingSecret": "x",
         "tls.mode": "none"},
        {"tls.mode": "existingSecrets", "tls.existingSecrets.client": "c", "tls.existingSecrets.server": "s",
         "tls.existingSecrets.seedClient": "sc", "tls.existingSecrets.keys.ca": "root.pem"},
        {"tls.mode": "certManager", "tls.certManager.issuerRef.name": "corp-ca",
         "tls.certManager.issuerRef.kind": "ClusterIssuer"},
    ],
)
def test_the_old_name_of_backend_tls_still_applies_and_is_flagged(tmp_path, settings):
    """`tls` was the backend's mTLS under a name that read like the ingress's TLS: values given
    under it render exactly as under `backendTLS`, and the notes ask for the new name."""
    def sets(d):
        return [a for k, v in d.items() for a in ("--set", f"{k}={v}")]

    renamed = {k.replace("tls.", "backendTLS.", 1) if k.startswith("tls.") else k: v for k, v in settings.items()}
    fixed = ["--set", "gateway.purge.existingSecret=t", "--set", "s3.existingSecret=x"]
    old = helm_template(*sets(settings), *fixed)
    new = helm_template(*sets(renamed), *fixed)
    assert old[0] == 0 and new[0] == 0, old[2] + new[2]
    assert old[1] == new[1]
    assert "DEPRECATED: the values under `tls`" in render_notes(tmp_path, *sets(settings))
    assert "DEPRECATED" not in render_notes(tmp_path / "new", *sets(renamed))


# --- day two: upgrades, sizes, GitOps, AWS, air-gapped registries, IPv6 ------------------------


def setup_job_name(*args):
    return [j["metadata"]["name"] for j in render(*args).setup_jobs()]


def test_any_change_to_the_setup_jobs_pod_template_is_a_new_job(tmp_path):
    """A Job's template is immutable: every change that reaches it must change its name."""
    base = setup_job_name()
    assert setup_job_name() == base
    for change in (
        ("--set", "nodeSelector.disk=ssd"),
        ("--set", "commonLabels.team=web"),
        ("--set", "tolerations[0].key=spot"),
        ("--set", "s3.region=eu-west-1"),
        ("--set", "seed.resources.limits.memory=256Mi"),
    ):
        assert setup_job_name(*change) != base, change
    # The chart's version is in the pod's labels: a copy of the chart with another version.
    bumped = tmp_path / "gateway"
    subprocess.run(["cp", "-r", str(CHART), str(bumped)], check=True)
    chart_yaml = bumped / "Chart.yaml"
    chart_yaml.write_text(re.sub(r"(?m)^version: .*$", "version: 9.9.9", chart_yaml.read_text()))
    out = subprocess.run([helm_binary(), "template", "gw", str(bumped), "--namespace", "web"],
                         capture_output=True, text=True, check=True).stdout
    bumped_jobs = [d["metadata"]["name"] for d in yaml.safe_load_all(out)
                   if d and d["kind"] == "Job" and "-setup-" in d["metadata"]["name"]]
    assert bumped_jobs and bumped_jobs != base
    # Finished Jobs are deleted after a day (null keeps them).
    assert render().setup_jobs()[0]["spec"]["ttlSecondsAfterFinished"] == 86400
    assert "ttlSecondsAfterFinished" not in render("--set", "seed.ttlSecondsAfterFinished=null").setup_jobs()[0]["spec"]


def memory_of(r):
    res = container(r.one("Deployment"), "gateway")["resources"]
    return res["requests"]["memory"], res["limits"]["memory"]


def test_the_memory_limit_follows_the_cache():
    # 128 MiB + max(128/4, 2 x 16) + 64
    assert memory_of(render()) == ("224Mi", "224Mi")
    # 512 + 128 + 64, in any spelling of the size.
    for size in ('"512MiB"', '"512Mi"', "536870912", '"0.5GiB"'):
        assert memory_of(render("--set-json", f"gateway.cache.maxBytes={size}")) == ("704Mi", "704Mi"), size
    # A set fill budget replaces the default one.
    assert memory_of(render("--set", "gateway.cache.fillBudget=256MiB"))[1] == "448Mi"
    # Memory set by hand is kept when it is enough; below the formula the render fails.
    r = render("--set", "resources.limits.memory=1Gi", "--set", "resources.requests.memory=300Mi")
    assert memory_of(r) == ("300Mi", "1Gi")
    code, _, err = helm_template("--set", "gateway.cache.maxBytes=512MiB", "--set", "resources.limits.memory=256Mi")
    assert code != 0 and "resources.limits.memory 256Mi is below the 704Mi" in err, err


def test_sizes_take_bytes_iec_units_and_kubernetes_units():
    for size, flag_value in (("0", "0"), ("536870912", "536870912"), ('"512Mi"', "512Mi"), ('"512MiB"', "512MiB")):
        r = render("--set-json", f"gateway.cache.maxBytes={size}")
        assert flag(container(r.one("Deployment"), "gateway")["args"], "--cache-max-bytes") == flag_value
    code, _, err = helm_template("--set", "gateway.cache.maxBytes=lots")
    assert code != 0 and "gateway.cache.maxBytes" in err


def test_gitops_renders_are_identical_and_generated_values_are_refused():
    aws = str(CHART / "ci" / "aws-irsa-values.yaml")
    assert helm_template("-f", aws)[1] == helm_template("-f", aws)[1]
    certs = ("-f", str(CHART / "ci" / "cert-manager-values.yaml"), "--set", "stableRender=true",
             "--set", "s3.existingSecret=root", "--set", "gateway.purge.existingSecret=token")
    first = helm_template(*certs)
    assert first[0] == 0, first[2]
    assert first[1] == helm_template(*certs)[1]
    # Each generated value is named, with the value that replaces it.
    for missing, named in (("s3.existingSecret=", "s3.existingSecret"),
                           ("gateway.purge.existingSecret=", "gateway.purge.existingSecret")):
        code, _, err = helm_template(*certs, "--set", missing)
        assert code != 0 and named in err, err
    code, _, err = helm_template("--set", "stableRender=true", "--set", "s3.existingSecret=root",
                                 "--set", "gateway.purge.existingSecret=token")
    assert code != 0 and "backendTLS.mode=helm" in err


def test_aws_with_irsa_needs_no_endpoint_no_keys_and_writes_nothing():
    r = render("-f", str(CHART / "ci" / "aws-irsa-values.yaml"))
    args = container(r.one("Deployment"), "gateway")["args"]
    assert flag(args, "--endpoint") == "https://s3.eu-west-1.amazonaws.com"
    assert flag(args, "--credentials") == "chain"
    assert not [d for d in r.docs if d["kind"] == "Job"], "no seed or setup Job writes to the bucket"
    assert not [d for d in r.docs if d["kind"] == "Secret"]
    sa = r.one("ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    # The helm test then asks for no seeded object.
    assert {e["name"]: e["value"] for e in container(r.one("Pod"), "fetch")["env"]}["SEEDED"] == ""
    assert {e["name"]: e["value"] for e in container(render().one("Pod"), "fetch")["env"]}["SEEDED"] == "true"
    # Seeding is on by default only with the chart's MinIO, and can still be asked for.
    assert render().one("Job", "-seed")
    assert render("-f", str(CHART / "ci" / "aws-irsa-values.yaml"), "--set", "seed.enabled=true").one("Job", "-seed")


def test_every_image_and_volume_follows_the_global_values():
    r = render("-f", str(CHART / "ci" / "full-values.yaml"), "--set", "global.imageRegistry=mirror.internal:5000",
               "--set", "global.imagePullSecrets[0]=mirror", "--set", "imagePullSecrets[0].name=own",
               "--set", "global.storageClass=fast")
    pods = [d for d in r.docs if d["kind"] in WORKLOADS]
    assert {d["kind"] for d in pods} >= {"Deployment", "StatefulSet", "Job", "Pod"}
    for d in pods:
        spec = pod_spec(d)
        for c in spec["containers"] + spec.get("initContainers", []):
            assert c["image"].startswith("mirror.internal:5000/"), (d["metadata"]["name"], c["image"])
        assert spec["imagePullSecrets"] == [{"name": "own"}, {"name": "mirror"}], d["metadata"]["name"]
    claims = [t for d in r.of_kind("StatefulSet") for t in d["spec"].get("volumeClaimTemplates", [])]
    assert claims and all(t["spec"]["storageClassName"] == "fast" for t in claims)
    # Without global values, each image names its own registry.
    images = {c["image"].split("/")[0] for d in render().docs if d["kind"] in WORKLOADS
              for c in pod_spec(d)["containers"]}
    assert images == {"gateway:0.1.0", "quay.io", "docker.io"}, images


def test_listeners_bind_ipv6_and_ipv4_or_the_chosen_address():
    args = container(render().one("Deployment"), "gateway")["args"]
    assert (flag(args, "--listen"), flag(args, "--admin-listen")) == ("[::]:8080", "[::]:9090")
    args = container(render("--set", "gateway.listenAddress=0.0.0.0").one("Deployment"), "gateway")["args"]
    assert flag(args, "--listen") == "0.0.0.0:8080"
    code, _, err = helm_template("--set", "gateway.listenAddress=localhost")
    assert code != 0 and "listenAddress" in err


def test_affinity_presets_and_spread_constraints_select_the_gateway_pods_only():
    selector = {"matchLabels": {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/instance": "gw",
                                "app.kubernetes.io/component": "gateway"}}
    soft = pod_spec(render().one("Deployment"))["affinity"]["podAntiAffinity"]
    assert soft["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"] == selector
    hard = pod_spec(render("--set", "podAntiAffinityPreset=hard", "--set", "updateStrategy.rollingUpdate.maxUnavailable=1")
                    .one("Deployment"))["affinity"]["podAntiAffinity"]
    assert hard["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"] == selector
    assert "affinity" not in pod_spec(render("--set", "podAntiAffinityPreset=none").one("Deployment"))
    # Required anti-affinity with no pod allowed down cannot roll out once every node has a pod.
    code, _, err = helm_template("--set", "podAntiAffinityPreset=hard")
    assert code != 0 and "deadlocks a rollout" in err
    spread = pod_spec(render("--set", "topologySpreadConstraints[0].maxSkew=2",
                             "--set", "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
                             "--set", "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule")
                      .one("Deployment"))["topologySpreadConstraints"]
    assert spread == [{"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone",
                       "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}]


def test_alerts_select_the_job_the_service_monitor_names():
    on = ("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true")

    def exprs(r):
        return [rule["expr"] for g in r.one("PrometheusRule")["spec"]["groups"] for rule in g["rules"]]

    assert all('job="gw-gateway-admin"' in e for e in exprs(render(*on)))
    named = render(*on, "--set", "metrics.serviceMonitor.jobLabel=app.kubernetes.io/name")
    assert named.one("ServiceMonitor")["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert all('job="gateway"' in e for e in exprs(named))
    code, _, err = helm_template(*on, "--set", "metrics.serviceMonitor.jobLabel=nope")
    assert code != 0 and "jobLabel" in err


def test_default_site_must_name_a_site_and_helm_test_sends_its_host():
    full = ("-f", str(CHART / "ci" / "full-values.yaml"))
    code, _, err = helm_template(*full, "--set", "gateway.defaultSite=wwww")
    assert code != 0 and 'gateway.defaultSite "wwww" names no site' in err
    env = {e["name"]: e["value"] for e in container(render(*full).one("Pod"), "fetch")["env"]}
    assert env["HOST"] == "gifs.example.com"
    env = {e["name"]: e["value"] for e in container(render().one("Pod"), "fetch")["env"]}
    assert env["HOST"] == ""


def test_load_balancer_fields_and_security_contexts_are_values():
    svc = render("--set", "service.type=LoadBalancer", "--set", "service.externalTrafficPolicy=Local",
                 "--set", "service.nodePort=30080", "--set", "service.loadBalancerSourceRanges[0]=203.0.113.0/24",
                 "--set", "service.loadBalancerClass=service.k8s.aws/nlb").one("Service", "gw-gateway")["spec"]
    assert (svc["externalTrafficPolicy"], svc["ports"][0]["nodePort"], svc["loadBalancerSourceRanges"],
            svc["loadBalancerClass"]) == ("Local", 30080, ["203.0.113.0/24"], "service.k8s.aws/nlb")
    assert "externalTrafficPolicy" not in render("--set", "service.externalTrafficPolicy=Local") \
        .one("Service", "gw-gateway")["spec"], "ClusterIP Services take no external policy"
    # OpenShift's restricted SCC picks the user and group: the chart's are removed (null).
    openshift = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    r = render(*[a for key in ("runAsUser", "runAsGroup", "fsGroup", "fsGroupChangePolicy")
                 for a in ("--set", f"minio.podSecurityContext.{key}=null")],
               *[a for key in ("runAsUser", "runAsGroup") for a in ("--set", f"tests.podSecurityContext.{key}=null")])
    assert pod_spec(r.one("StatefulSet"))["securityContext"] == openshift
    assert pod_spec(r.one("Pod"))["securityContext"] == openshift


def test_existing_secrets_take_other_key_names_and_a_separate_ca():
    """A `kubectl create secret tls` Secret has tls.crt and tls.key but no ca.crt: the CA comes
    from caSecret, and no volume names a key its Secret lacks."""
    existing = ("--set", "backendTLS.mode=existingSecrets", "--set", "backendTLS.existingSecrets.client=client",
                "--set", "backendTLS.existingSecrets.seedClient=seed", "--set", "backendTLS.existingSecrets.server=server")
    r = render(*existing, "--set", "backendTLS.existingSecrets.caSecret=root-ca",
               "--set", "backendTLS.existingSecrets.keys.ca=ca.pem")
    tls = {v["name"]: v for v in pod_spec(r.one("Deployment"))["volumes"]}["tls"]["projected"]["sources"]
    assert tls == [
        {"secret": {"name": "root-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]}},
        {"secret": {"name": "client", "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]}},
    ]
    certs = {v["name"]: v for v in pod_spec(r.one("StatefulSet"))["volumes"]}["certs"]["projected"]["sources"]
    assert certs[0] == {"secret": {"name": "root-ca", "items": [{"key": "ca.pem", "path": "CAs/ca.crt"}]}}
    ca = {v["name"]: v for v in pod_spec(r.setup_jobs()[0])["volumes"]}["ca"]["projected"]["sources"]
    assert ca == [{"secret": {"name": "root-ca", "items": [{"key": "ca.pem", "path": "ca.crt"}]}}]
    # Other key names in the certificates' own Secrets.
    r = render(*existing, "--set", "backendTLS.existingSecrets.keys.cert=cert.pem",
               "--set", "backendTLS.existingSecrets.keys.key=key.pem")
    items = {v["name"]: v for v in pod_spec(r.one("Deployment"))["volumes"]}["tls"]["secret"]["items"]
    assert items == [{"key": "ca.crt", "path": "ca.crt"}, {"key": "cert.pem", "path": "tls.crt"},
                     {"key": "key.pem", "path": "tls.key"}]
