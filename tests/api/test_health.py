from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tokens, auth


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}


def test_readyz_is_503_when_schema_is_behind(client: TestClient) -> None:
    appliance = client.app.state.appliance  # type: ignore[attr-defined]
    with appliance.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num='0000'")
    r = client.get("/readyz")
    assert r.status_code == 503
    assert "appliance migrate" in r.json()["checks"]["migrations"]


def test_metrics_expose_tasks_by_status_and_latency(client: TestClient, tokens: Tokens) -> None:
    client.get("/api/v1/tasks", headers=auth(tokens.viewer))
    text = client.get("/metrics").text
    assert 'appliance_tasks{status="queued"} 0.0' in text
    assert (
        'appliance_http_request_duration_seconds_count{method="GET",route="/api/v1/tasks",status="200"}'
        in text
    )


def test_openapi_is_served_under_api_v1(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/tasks" in spec["paths"]
    assert "/api/v1/tasks/{task_id}/events" in spec["paths"]


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_api_docs_work_without_internet(client: TestClient) -> None:
    # / is the web UI (its sign-in page for a visitor); the API's docs stay at /api/v1/docs
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    page = client.get("/api/v1/docs").text
    assert "cdn." not in page
    assert "https://" not in page
    assert client.get("/api/v1/docs-static/swagger-ui-bundle.js").status_code == 200
