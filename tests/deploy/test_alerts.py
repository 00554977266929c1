"""The chart's PrometheusRule evaluated for real: `promtool check rules` on the rendered rules,
then `promtool test rules` feeds each alert synthetic series (Debian's `prometheus` package;
scripts/test.sh installs it) and checks that it fires when it should, with the labels and
annotations an on-call engineer sees, and stays quiet when it should not."""

import shutil
import subprocess

import pytest
import yaml

from conftest import render

SERIES = 'job="gw-gateway-admin", namespace="web"'
ALERT = {"job": "gw-gateway-admin", "namespace": "web", "team": "web"}


def promtool():
    tool = shutil.which("promtool")
    if not tool:
        pytest.fail("promtool is missing: install Debian's prometheus package (scripts/test.sh does)")
    return tool


def series(name, values, **labels):
    labels = {"job": "gw-gateway-admin", "namespace": "web", "pod": "gw-gateway-1", **labels}
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def alert(severity, **annotations):
    return {"exp_labels": {**ALERT, "severity": severity}, "exp_annotations": annotations}


TESTS = [
    # A certificate that ends 10 days after the epoch, looked at 2 hours in: fires (for: 1h).
    {
        "interval": "1m",
        "input_series": [series("gateway_tls_client_cert_expiry_timestamp_seconds", "864000+0x200")],
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": "GatewayClientCertificateExpiring", "exp_alerts": []},
            {"eval_time": "2h", "alertname": "GatewayClientCertificateExpiring", "exp_alerts": [alert(
                "warning",
                summary="The gateway's client certificate expires within 14 days",
                description="gw-gateway-admin presents a client certificate to the S3 backend that expires in 9d 22h 0m 0s; "
                "mTLS to the backend breaks then. Renew it (backendTLS.mode=helm: an upgrade renews it; "
                "cert-manager: check the Certificate).",
            )]},
        ],
    },
    # One certificate far from expiry: quiet.
    {
        "interval": "1m",
        "input_series": [series("gateway_tls_client_cert_expiry_timestamp_seconds", "99999999+0x200")],
        "alert_rule_test": [{"eval_time": "2h", "alertname": "GatewayClientCertificateExpiring", "exp_alerts": []}],
    },
    # The backend down for every pod for more than 5 minutes fires; one pod still up does not.
    {
        "interval": "1m",
        "input_series": [
            series("gateway_backend_up", "1 1 0x20", pod="a"),
            series("gateway_backend_up", "1 1 0x20", pod="b"),
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "GatewayBackendDown", "exp_alerts": []},
            {"eval_time": "10m", "alertname": "GatewayBackendDown", "exp_alerts": [alert(
                "critical",
                summary="No gateway pod reaches the S3 backend",
                description="gw-gateway-admin: every pod has failed to reach the bucket for 5 minutes; the cache serves what it "
                "holds (stale if needed), misses answer 502/503/504. The pods' logs name the cause.",
            )]},
        ],
    },
    {
        "interval": "1m",
        "input_series": [series("gateway_backend_up", "0x20", pod="a"), series("gateway_backend_up", "1x20", pod="b")],
        "alert_rule_test": [{"eval_time": "15m", "alertname": "GatewayBackendDown", "exp_alerts": []}],
    },
    # 10 % of answers are 5xx for 15 minutes: fires; 1 % does not.
    {
        "interval": "1m",
        "input_series": [
            series("gateway_http_requests_total", "0+90x30", method="GET", status_class="2xx"),
            series("gateway_http_requests_total", "0+10x30", method="GET", status_class="5xx"),
        ],
        "alert_rule_test": [{"eval_time": "20m", "alertname": "GatewayErrorRatioHigh", "exp_alerts": [alert(
            "warning",
            summary="More than 5% of the gateway's answers are 5xx",
            description="gw-gateway-admin answers 10% of requests with 5xx.",
        )]}],
    },
    {
        "interval": "1m",
        "input_series": [
            series("gateway_http_requests_total", "0+99x30", method="GET", status_class="2xx"),
            series("gateway_http_requests_total", "0+1x30", method="GET", status_class="5xx"),
        ],
        "alert_rule_test": [{"eval_time": "20m", "alertname": "GatewayErrorRatioHigh", "exp_alerts": []}],
    },
    # Stale answers for more than 10 minutes.
    {
        "interval": "1m",
        "input_series": [series("gateway_cache_stale_served_total", "0+5x30")],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "GatewayServingStale", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "GatewayServingStale", "exp_alerts": [alert(
                "warning",
                summary="The gateway serves stale copies because the backend fails revalidation",
                description="gw-gateway-admin has served stale objects for 10 minutes (stale-if-error); they stop once "
                "gateway.cache.staleIfError runs out.",
            )]},
        ],
    },
    # A rejected TLS reload fires at once; accepted ones never.
    {
        "interval": "1m",
        "input_series": [
            series("gateway_tls_reloads_total", "0 0 0 1 1 1 1 1", file="identity", outcome="rejected"),
            series("gateway_tls_reloads_total", "0 1 2 3 4 5 6 7", file="identity", outcome="ok"),
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "GatewayTlsReloadRejected", "exp_alerts": []},
            {"eval_time": "5m", "alertname": "GatewayTlsReloadRejected", "exp_alerts": [alert(
                "warning",
                summary="The gateway rejected changed TLS files",
                description="gw-gateway-admin saw new certificate or CA files it could not use (half-written or mismatched) and "
                "keeps the old ones; the logs say which.",
            )]},
        ],
    },
    # Fills bypassed for 15 minutes and more.
    {
        "interval": "1m",
        "input_series": [series("gateway_cache_fills_bypassed_total", "0+3x40")],
        "alert_rule_test": [{"eval_time": "30m", "alertname": "GatewayCacheFillsBypassed", "exp_alerts": [alert(
            "info",
            summary="Cacheable misses are streamed uncached for lack of memory budget",
            description="gw-gateway-admin has bypassed the cache for 15 minutes because its fill budget was spent: raise "
            "gateway.cache.maxBytes (and the memory limit) or lower gateway.cache.maxObjectBytes.",
        )]}],
    },
    # Credentials that expire 14 minutes in, not renewed: pending 5 minutes before, firing a minute later. Static keys
    # (the gauge at 0) never do.
    {
        "interval": "1m",
        "input_series": [series("gateway_backend_credentials_expiry_timestamp_seconds", "840+0x20", pod="a"),
                         series("gateway_backend_credentials_expiry_timestamp_seconds", "0x20", pod="b")],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "GatewayCredentialsNotRenewed", "exp_alerts": []},
            {"eval_time": "12m", "alertname": "GatewayCredentialsNotRenewed", "exp_alerts": [alert(
                "critical",
                summary="The gateway's temporary S3 credentials expire within 5 minutes",
                description="gw-gateway-admin cannot renew its credentials (AssumeRoleWithCertificate); requests fail once they "
                "expire. The logs name the STS's answer.",
            )]},
        ],
    },
]


def test_alerts_fire_when_they_should(tmp_path):
    tool = promtool()
    rule = render("--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.prometheusRule.alertLabels.team=web",
                  "--set", "metrics.prometheusRule.labels.release=kube-prometheus").one("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    check = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    tested = {t["alertname"] for case in TESTS for t in case["alert_rule_test"]}
    assert names == tested, f"alerts without a test: {names - tested}"
    for i, case in enumerate(TESTS):
        spec = tmp_path / f"test-{i}.yaml"
        spec.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [case]}))
        run = subprocess.run([tool, "test", "rules", str(spec)], capture_output=True, text=True)
        assert run.returncode == 0, f"case {i}:\n{run.stdout}{run.stderr}"


def test_alerts_are_off_by_default_and_take_a_selector():
    assert not render().of_kind("PrometheusRule")
    rule = render("--set", "metrics.prometheusRule.enabled=true", "--set", 'metrics.prometheusRule.selector=job="gifs"')
    exprs = [r["expr"] for g in rule.one("PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    assert all('job="gifs"' in e and SERIES not in e for e in exprs), exprs
