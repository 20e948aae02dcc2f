"""The whole product in a browser: a real ``appliance serve`` running the real pipeline
(planning, the tool loop, validation in the Podman sandbox, review) against a scripted
OpenAI-compatible model, on a real git repository with a failing test. Sign in, add the
repository, submit the request, watch the live log, review the diff, comment, approve, and
find the fix on the remote's new branch."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest

from appliance.store.db import Database
from tests.gitrepos import plain_git
from tests.models.scripted_server import ScriptedServer
from tests.pipeline.scenario import REQUEST, happy_path, make_calc
from tests.servers import ServerProcess
from tests.ui.conftest import make_users
from tests.ui.test_browser import CHROMIUM, SCREENSHOTS, _sign_in

pytestmark = pytest.mark.slow


@pytest.fixture
def model() -> Iterator[ScriptedServer]:
    with ScriptedServer(models=["coder"]) as server:
        yield server


@pytest.fixture
def shots() -> Path:
    path = Path(os.environ.get("UI_SCREENSHOT_DIR") or SCREENSHOTS)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, or apt-get install chromium")
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_real_task_from_request_to_pushed_branch(
    db: Database, tmp_path: Path, model: ScriptedServer, browser: object, shots: Path
) -> None:
    calc = make_calc(tmp_path)
    model.add(*happy_path())
    make_users(db)
    endpoint = {"base_url": model.url, "model": "coder", "context_length": 8192}
    env = {
        "APPLIANCE_MODELS__ENDPOINTS": json.dumps([endpoint]),
        "APPLIANCE_INDEX__EMBEDDER": "none",
        "APPLIANCE_JOBS__ENABLED": "0",
    }
    with ServerProcess(env, tmp_path / "server.log") as server:
        base = server.url
        page = browser.new_page()  # type: ignore[attr-defined]
        _sign_in(page, base, "root")

        page.goto(f"{base}/repositories")
        page.fill("#name", "team/calc")
        page.fill("#clone_url", calc.url)
        page.click("text=Add repository")
        page.wait_for_selector("h1:has-text('team/calc')")

        page.goto(f"{base}/tasks/new")
        page.select_option("#repository_id", label="team/calc (git, main)")
        page.fill("#prompt", REQUEST)
        page.click("text=Submit task")
        page.wait_for_url(f"{base}/tasks/*")
        task_url = page.url
        # the live log fills over SSE as the agent works: its tool calls and the test run
        page.wait_for_selector("#log-lines :text('edit_file')", timeout=120_000)
        page.wait_for_selector("#open-review", timeout=180_000)
        log_text = page.inner_text("#log-lines")
        assert "read_file" in log_text
        assert "2 passed" in log_text  # the sandbox's test run, streamed live
        page.screenshot(path=shots / "task-real-pipeline.png", full_page=True)

        page.click("#open-review")
        page.wait_for_selector("text=Approve and publish")
        diff = page.inner_text("main")
        assert "return sum(values) / len(values)" in diff
        page.click("a[aria-label^='Comment on line'] >> nth=0")
        page.wait_for_selector("tr.comment-form textarea")
        page.fill("tr.comment-form textarea", "good catch")
        page.click("tr.comment-form button")
        page.wait_for_selector(".comment:has-text('good catch')")
        page.screenshot(path=shots / "review-real-pipeline.png", full_page=True)
        page.fill("#message", "ship it")
        page.click("#approve")
        page.wait_for_url(task_url)
        page.wait_for_selector("#published", timeout=60_000)
        branch = page.inner_text("#published code").strip()
        assert branch.startswith("appliance/")
        page.screenshot(path=shots / "task-real-published.png", full_page=True)
    # the approved fix is on the remote, on the task's own branch; main is untouched
    assert "return sum(values) / len(values)" in plain_git(
        calc.bare, "show", f"{branch}:calc/stats.py"
    )
    assert "(len(values) - 1)" in plain_git(calc.bare, "show", "main:calc/stats.py")
