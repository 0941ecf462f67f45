"""The Grafana dashboard of deploy/grafana/ is provisioned by docker-compose.yml over its
Prometheus, has the runbook's panels, and every expression in it is valid PromQL (promtool) over
series the app really exports: their names and the label values the panels select, read from
/metrics of gunicorn after a worker has run jobs, an action and a webhook."""

import json
import re
import subprocess
import uuid

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core import redis_keys
from orchestrator.models import Job
from orchestrator.webhooks import generate_webhook_secret
from tests import factories
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import http, scrape, wait_for_job
from tests.processes import ROOT, start_web, wait_until

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "ai-orchestrator.json").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

# Grafana fills these in before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
# Series whose samples appear only once something went wrong: their names are checked against
# what the app declares (in-process /metrics), not against samples of a healthy run.
ONLY_AFTER_ERRORS = {"django_db_errors_total"}


def panels() -> list[dict]:
    found = []
    for panel in DASHBOARD["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def expressions() -> list[str]:
    exprs = []
    for panel in panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            exprs.append(expr)
    return exprs


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]], set[str]]]:
    """(metric name, {label: (operator, value)}, grouping labels of the expression) for each
    series selector of `expr`."""
    grouping = {
        label.strip()
        for _, labels in GROUPING.findall(expr)
        for label in labels.split(",")
        if label.strip()
    }
    bare = re.sub(r"\[[^\]]*\]", "", GROUPING.sub("", expr))  # no grouping, no ranges
    found = []
    for name, braces, call in SELECTOR.findall(bare):
        if call or name in KEYWORDS:
            continue  # a function or an aggregation, not a series
        matchers = {label: (op, value) for label, op, value in MATCHER.findall(braces)}
        found.append((name, matchers, grouping))
    return found


def sample_names(families) -> set[str]:
    """The names of every sample these families can expose, with or without samples yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    return {
        family.name + suffix for family in families for suffix in suffixes.get(family.type, ("",))
    }


# --- The files ----------------------------------------------------------------------------------


def test_the_dashboard_has_the_runbooks_panels():
    titles = " | ".join(panel["title"].lower() for panel in panels())
    for words in (
        "queue depth",
        "enqueue and dequeue",
        "workers",
        "job outcomes",
        "model latency",
        "model errors",
        "action outcomes by status and reason",
        "approvals waiting",
        "oldest approval",
        "webhook failures",
        "latency of post /ai/jobs",
        "5xx share on /ai/jobs",
        "requests by view",
    ):
        assert words in titles, words
    assert DASHBOARD["uid"] == "ai-orchestrator"
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))


def test_every_panel_queries_the_provisioned_prometheus():
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the compose service
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]


def test_compose_runs_grafana_provisioned_read_only_on_localhost():
    grafana = COMPOSE["services"]["grafana"]
    image, _, tag = grafana["image"].partition(":")
    assert image == "grafana/grafana-oss"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag)  # pinned, never latest
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    # The password comes from .env and compose refuses to start without it: no default.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    mounts = {volume.split(":")[1]: volume for volume in grafana["volumes"]}
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "ai-orchestrator.yml").read_text()
    )["providers"][0]
    for source, target in (
        ("./deploy/grafana/provisioning", "/etc/grafana/provisioning"),
        ("./deploy/grafana/dashboards", provider["options"]["path"]),
    ):
        assert mounts[target] == f"{source}:{target}:ro"
        assert (ROOT / source).is_dir()
    assert "prometheus" in grafana["depends_on"]


def test_every_expression_is_valid_promql(tmp_path):
    # promtool parses each expression as Prometheus would, as a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr_{index}", "expr": expr}
                    for index, expr in enumerate(expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))

    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in result.stdout


def test_the_selector_parser_finds_series_and_skips_functions():
    found = selectors(
        'histogram_quantile(0.95, sum by (le) (rate(x_bucket{view="jobs",status=~"5.."}[5m])))'
        " / max(ai_queue_workers) and on (queue) y"
    )
    assert found == [
        ("x_bucket", {"view": ("=", "jobs"), "status": ("=~", "5..")}, {"le", "queue"}),
        ("ai_queue_workers", {}, {"le", "queue"}),
        ("y", {}, {"le", "queue"}),
    ]


@pytest.mark.django_db
def test_every_series_the_dashboard_reads_is_one_the_app_declares():
    declared = sample_names(text_string_to_metric_families(scrape()))
    names = {name for expr in expressions() for name, _, _ in selectors(expr)}

    assert names, "no series found in the dashboard"
    assert sorted(names - declared) == []


# --- Against the running stack ------------------------------------------------------------------


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_every_selector_matches_series_of_a_running_stack(start_worker_with, receiver):
    workspace = factories.make_workspace(
        "ws-grafana", webhook_url=receiver.url, webhook_secret=generate_webhook_secret()
    )
    key = factories.make_api_key(workspace)
    start_worker_with(WEBHOOK_ALLOW_HTTP="true", WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")
    web, base_url = start_web()
    try:
        auth = {"Authorization": f"Bearer {key}"}
        for prompt in ('CALL task.create {"title": "dashboard"}', "FAIL 400 1"):
            body = {"client_request_id": f"g-{uuid.uuid4().hex[:8]}", "prompt": prompt}
            status, _, text = http(f"{base_url}/ai/jobs", body=body, headers=auth)
            assert status == 202, text
            job_id = json.loads(text)["id"]
            assert wait_for_job(job_id).status in (Job.Status.SUCCEEDED, Job.Status.FAILED)
            assert http(f"{base_url}/ai/jobs/{job_id}", headers=auth)[0] == 200
        receiver.wait_for(2)

        def exposition_with_every_outcome() -> str | None:
            text = http(f"{base_url}/metrics")[2]
            return text if "ai_webhook_attempts_total{" in text else None

        wait_until(lambda: exposition_with_every_outcome() is not None, timeout=10)
        samples = [
            sample
            for family in text_string_to_metric_families(exposition_with_every_outcome())
            for sample in family.samples
        ]
    finally:
        web.stop()

    missing = []
    for expr in expressions():
        for name, matchers, grouping in selectors(expr):
            if name in ONLY_AFTER_ERRORS:
                continue
            # Equality matchers name label values that must exist (a view, a queue, a method);
            # the others only need their label to exist.
            wanted = {label: value for label, (op, value) in matchers.items() if op == "="}
            labels_needed = (set(matchers) | grouping) - {"le"}
            if not any(
                sample.name == name
                and wanted.items() <= sample.labels.items()
                and labels_needed <= set(sample.labels)
                for sample in samples
            ):
                missing.append((name, matchers, sorted(grouping)))
    assert missing == []
    assert redis_keys.WEBHOOK_QUEUE in {sample.labels.get("queue") for sample in samples}
