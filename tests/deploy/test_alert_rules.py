"""deploy/prometheus/alerts.yml is valid, holds the runbook's alerts and more, and each alert
fires and stays quiet as its promtool unit tests (alerts_test.yml) say."""

import subprocess

import yaml

from tests.processes import ROOT

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
EXPECTED = {
    "AIQueueDepthHigh",
    "AIJobProcessingStalled",
    "AIHTTPErrorRateHigh",
    "AIJobsLatencyHigh",
    "AINoLiveWorkers",
    "AIMetricsStoreDown",
    "AIActionsUnknown",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["promtool", *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60
    )


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_rules_are_valid():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in result.stdout


def test_every_alert_exists_and_has_a_unit_test_that_fires_it():
    assert set(alerts()) == EXPECTED
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }
    quiet = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if not check["exp_alerts"]
    }
    assert fired == EXPECTED
    assert quiet == EXPECTED


def test_the_runbook_alerts_keep_their_thresholds():
    rules = alerts()
    jobs_depth = 'ai_queue_depth_total{queue="ai:queue:pending"})'
    assert f"{jobs_depth} > 1000" in rules["AIQueueDepthHigh"]["expr"]
    assert rules["AIQueueDepthHigh"]["for"] == "5m"
    assert "rate(ai_queue_dequeue_total[5m])) == 0" in rules["AIJobProcessingStalled"]["expr"]
    assert rules["AIJobProcessingStalled"]["for"] == "10m"


def test_unit_tests_pass():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_fail_when_a_threshold_moves(tmp_path):
    # Positive control: the unit tests notice a rule that no longer fires where it should.
    (tmp_path / "alerts.yml").write_text(RULES.read_text().replace("> 1000", "> 5000"))
    (tmp_path / "alerts_test.yml").write_text(RULE_TESTS.read_text())
    result = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "AIQueueDepthHigh" in result.stdout + result.stderr
