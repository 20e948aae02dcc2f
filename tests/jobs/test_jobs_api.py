"""The jobs API: list, run now, pause, resume, runs; roles enforced."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.conftest import Tokens, auth


def wait_for_run(client: TestClient, token: str, job_id: str) -> dict[str, object]:
    for _ in range(300):
        found = client.get(f"/api/v1/jobs/{job_id}/runs", headers=auth(token)).json()
        if found and found[0]["outcome"] != "running":
            return found[0]  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise AssertionError(f"{job_id} did not finish")


def test_jobs_are_listed_per_repository_and_run_on_demand(
    client: TestClient, tokens: Tokens
) -> None:
    created = client.post(
        "/api/v1/repositories",
        json={"name": "team/api", "clone_url": "file:///nowhere"},
        headers=auth(tokens.admin),
    )
    assert created.status_code == 201
    jobs = {j["id"]: j for j in client.get("/api/v1/jobs", headers=auth(tokens.viewer)).json()}
    assert {"retention", "reindex:team/api", "deps:team/api", "branch_cleanup:team/api"} <= set(
        jobs
    )
    assert jobs["retention"]["last_run"] is None
    assert jobs["deps:team/api"]["cron"].endswith(" 2 * * *")

    refused = client.post("/api/v1/jobs/retention/run", headers=auth(tokens.viewer))
    assert refused.status_code == 403
    started = client.post("/api/v1/jobs/retention/run", headers=auth(tokens.admin))
    assert started.status_code == 202
    run = wait_for_run(client, tokens.viewer, "retention")
    assert run["outcome"] == "ok"
    assert run["trigger"] == "manual"
    assert "the audit log is kept" in str(run["message"])

    # A job that cannot work says why: the repository's remote does not exist.
    client.post("/api/v1/jobs/reindex:team/api/run", headers=auth(tokens.admin))
    failed = wait_for_run(client, tokens.viewer, "reindex:team/api")
    assert failed["outcome"] == "failed"
    assert "nowhere" in str(failed["message"])


def test_pause_and_resume_and_unknown_jobs(client: TestClient, tokens: Tokens) -> None:
    paused = client.post("/api/v1/jobs/retention/pause", headers=auth(tokens.admin))
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert paused.json()["next_run_time"] is None
    resumed = client.post("/api/v1/jobs/retention/resume", headers=auth(tokens.admin)).json()
    assert resumed["paused"] is False
    assert resumed["next_run_time"] is not None
    assert client.post("/api/v1/jobs/retention/pause", headers=auth(tokens.dev)).status_code == 403
    missing = client.post("/api/v1/jobs/deps:nope/pause", headers=auth(tokens.admin))
    assert missing.status_code == 404
    assert "appliance jobs list" in missing.text
    assert client.get("/api/v1/jobs/deps:nope/runs", headers=auth(tokens.viewer)).status_code == 404


def test_the_appliance_polls_pull_requests_for_review_comments(
    client: TestClient, tokens: Tokens
) -> None:
    listed = client.get("/api/v1/jobs", headers=auth(tokens.viewer)).json()
    ids = [j["id"] for j in listed]
    assert "review_poll" in ids
