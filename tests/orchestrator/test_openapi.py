"""The OpenAPI schema and Swagger UI are served by the app itself, and schemathesis, run over the
whole schema against gunicorn, finds no 5xx and no response that breaks the schema."""

import re
import subprocess

import pytest

from orchestrator.api_keys import SCOPES
from orchestrator.models import Job
from tests import factories
from tests.helpers import submit
from tests.processes import BIN, start_web

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/ai/jobs", "get"): ["jobs:read"],
    ("/ai/jobs", "post"): ["jobs:write"],
    ("/ai/jobs/{job_id}", "get"): ["jobs:read"],
    ("/ai/jobs/{job_id}/cancel", "post"): ["jobs:write"],
    ("/ai/actions", "get"): ["actions:approve"],
    ("/ai/actions/{action_id}/approve", "post"): ["actions:approve"],
    ("/ai/actions/{action_id}/reject", "post"): ["actions:approve"],
}


def test_schema_documents_every_operation_with_its_scopes_errors_and_headers(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    operations = {
        (path, method): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == set(OPERATIONS)
    for key, operation in operations.items():
        assert operation["x-required-scopes"] == OPERATIONS[key]
        assert operation["security"] == [{"apiKey": []}]
        assert {"401", "403", "429"} <= set(operation["responses"])
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for topic in ("Idempotency", "Rate limits", "Webhooks", "Errors", "scopes"):
        assert topic in schema["info"]["description"]


def test_swagger_ui_is_served_without_any_cdn(client):
    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in asset for asset in assets), assets
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert "cdn" not in html.lower()
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(workspace, tmp_path):
    workspace.rate_limit_per_minute = 0  # thousands of generated requests, none throttled
    workspace.save()
    key = factories.make_api_key(workspace, scopes=list(SCOPES))
    factories.make_job(workspace)
    web, base_url = start_web()
    try:
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "run",
                f"{base_url}/api/schema/",
                "--header",
                f"Authorization: Bearer {key}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_headers_conformance,response_schema_conformance",
                "--max-examples",
                "40",
                "--workers",
                "2",
                "--seed",
                "6",
                "--generation-database",
                "none",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    finally:
        web.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:] + web.log()[-3000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert summary and int(summary[1]) > 100 and summary[1] == summary[2], result.stdout[-3000:]


@pytest.mark.parametrize("metadata", [{"a": "b\u0000c"}, {"a\u0000": 1}, {"a": [{"b": "\u0000"}]}])
def test_metadata_with_a_null_character_is_a_400_not_a_server_error(api_client, metadata):
    # Found by schemathesis: PostgreSQL's jsonb cannot store U+0000.
    response = submit(api_client, client_request_id="nul", prompt="Hi", metadata=metadata)

    assert response.status_code == 400, response.content
    assert "metadata" in response.json()["error"]["fields"]
    assert not Job.objects.exists()
