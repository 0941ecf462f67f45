"""docker-compose.yml describes the production-like single host the issue asks for. No Docker
engine runs here, so the file is parsed and its properties checked."""

import os
import shutil
import subprocess

import pytest
import yaml

from scripts.run_stack import worker_command
from tests.processes import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("web", "worker", "beat", "flower")


def command(service: str) -> str:
    value = SERVICES[service]["command"]
    return " ".join(value) if isinstance(value, list) else value


def test_every_service_is_there():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker",
        "beat",
        "flower",
        "prometheus",
        "grafana",
        "simulator",
    }


def test_postgres_keeps_its_data_and_reports_health():
    postgres = SERVICES["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in postgres["healthcheck"]["test"]


def test_redis_persists_and_never_evicts():
    redis = SERVICES["redis"]
    assert redis["image"].startswith("redis:7")
    args = command("redis")
    assert "--appendonly yes" in args
    assert "--appendfsync everysec" in args
    assert "--maxmemory-policy noeviction" in args
    assert "allkeys-lru" not in args
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "ping" in redis["healthcheck"]["test"]


def test_migrate_runs_once_before_the_app():
    migrate = SERVICES["migrate"]
    assert "manage.py migrate" in command("migrate")
    assert "restart" not in migrate  # one-shot
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_wait_for_healthy_stores_and_read_dotenv(service):
    spec = SERVICES[service]
    assert spec["env_file"] == ".env"
    assert spec["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert spec["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert "@postgres:5432/" in spec["environment"]["DATABASE_URL"]


def test_web_runs_four_gunicorn_workers_on_8000_with_shared_metrics():
    args = command("web")
    assert args.startswith("gunicorn -c config/gunicorn.py config.wsgi")
    assert "--workers 4" in args
    assert "0.0.0.0:8000" in args
    assert "8000:8000" in SERVICES["web"]["ports"]
    assert "/health" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert (ROOT / "config" / "gunicorn.py").is_file()


def test_worker_and_beat_run_celery():
    # The worker make run starts, the one make bench measures: same arguments but its name.
    shipped = ["celery", *worker_command("any@%h")[1:-2]]
    assert SERVICES["worker"]["command"] == shipped
    assert SERVICES["worker"]["deploy"]["replicas"] == 2  # two processes per core, 2 cores
    assert command("beat").startswith("celery -A config beat")
    assert any(v.endswith(":/app/.run") for v in SERVICES["beat"]["volumes"])


def test_flower_is_authenticated_persistent_and_private():
    flower = SERVICES["flower"]
    assert command("flower").startswith("celery -A config flower")
    assert "--port=5555" in command("flower")
    assert "basic-auth" not in command("flower")  # from FLOWER_BASIC_AUTH in .env
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert any(v.endswith(":/app/.run") for v in flower["volumes"])  # flower.db survives
    assert "FLOWER_BASIC_AUTH" in (ROOT / "flowerconfig.py").read_text()


def test_prometheus_scrapes_web_and_loads_the_alert_rules():
    prometheus = SERVICES["prometheus"]
    assert "127.0.0.1:9090:9090" in prometheus["ports"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert prometheus["depends_on"]["web"]["condition"] == "service_healthy"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (web_job,) = [job for job in config["scrape_configs"] if job["job_name"] == "ai-orchestrator"]
    assert web_job["metrics_path"] == "/metrics"
    assert web_job["static_configs"][0]["targets"] == ["web:8000"]
    assert (ROOT / "deploy" / "prometheus" / "alerts.yml").is_file()


def test_simulator_only_in_the_dev_profile():
    assert SERVICES["simulator"]["profiles"] == ["dev"]
    assert "orchestrator.simulator" in command("simulator")
    for service in APP_SERVICES:
        assert "simulator" not in SERVICES[service]["depends_on"]


def test_prometheus_config_is_valid():
    config = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    result = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


LONG_RUNNING = set(SERVICES) - {"migrate"}


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_every_long_running_service_is_restarted_when_it_exits(service):
    assert SERVICES[service]["restart"] == "unless-stopped"


def test_the_worker_is_healthy_only_while_its_own_node_answers_a_ping():
    check = SERVICES["worker"]["healthcheck"]
    assert check["test"][0] == "CMD-SHELL"
    # `$$` is compose's escape: the shell sees $HOSTNAME, the node's name is celery@<hostname>.
    assert "celery -A config inspect ping --destination celery@$$HOSTNAME" in check["test"][1]
    assert check["retries"] >= 1 and "start_period" in check


def test_beat_is_healthy_only_while_its_schedule_file_keeps_being_written():
    check = " ".join(SERVICES["beat"]["healthcheck"]["test"])
    assert "/app/.run/celerybeat-schedule" in check
    assert "getmtime" in check and "< 600" in check
    assert "-s /app/.run/celerybeat-schedule" in command("beat")


def test_flower_is_healthy_while_its_healthcheck_page_answers():
    check = " ".join(SERVICES["flower"]["healthcheck"]["test"])
    assert "http://127.0.0.1:5555/healthcheck" in check


def compose_plugin() -> bool:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    shutil.which("docker") is None or not compose_plugin(),
    reason="the docker compose plugin is not installed: the YAML checks above stand in",
)
def test_docker_compose_accepts_the_file():
    result = subprocess.run(
        ["docker", "compose", "--file", "docker-compose.yml", "config", "--quiet",
         "--no-env-resolution"],
        cwd=ROOT,
        env={**os.environ, "GRAFANA_ADMIN_PASSWORD": "placeholder"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
