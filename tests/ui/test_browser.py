"""End to end in headless Chromium (Debian's ``chromium``) against a real ``appliance serve``:
sign in, add a repository, submit a task, watch its events arrive, review, comment,
approve, see the PR link; a viewer cannot approve; a forged POST is refused. Screenshots
of every page go to ``test-output/screenshots/`` at the repository root (or
``$UI_SCREENSHOT_DIR``), where they outlive the run for a person to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_sync
import pytest

from appliance.store import tasks as task_store
from appliance.store.db import Database
from tests.servers import ServerProcess
from tests.ui.conftest import PASSWORD, big_diff, make_users

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _chromium_present() -> None:
    """A browser test without a browser fails, loudly (make test installs chromium)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, or apt-get install chromium")


SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture
def shots() -> Path:
    path = Path(os.environ.get("UI_SCREENSHOT_DIR") or SCREENSHOTS)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare git repository with one commit on main."""
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path / "seed"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    (work / "app").mkdir()
    (work / "app" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    subprocess.run([*git, "push", "-q", "origin", "main"], check=True, capture_output=True)
    return bare


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[ServerProcess]:
    make_users(db)
    env = {
        "APPLIANCE_RUNNER__GRAPH": "tests.ui.graph:ui_graph",
        "APPLIANCE_JOBS__ENABLED": "0",
        "UI_TEST_STEP_DELAY": "0.4",
    }
    with ServerProcess(env, tmp_path / "server.log") as proc:
        yield proc


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _sign_in(page: object, base: str, username: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.fill("#username", username)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]


def test_submit_watch_review_comment_approve(
    server: ServerProcess, browser: object, origin: Path, shots: Path
) -> None:
    base = server.url
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(f"{base}/login")
    page.screenshot(path=shots / "login.png")
    _sign_in(page, base, "root")
    page.screenshot(path=shots / "dashboard.png", full_page=True)

    page.goto(f"{base}/repositories")
    page.fill("#name", "team/calc")
    page.fill("#clone_url", str(origin))
    page.click("text=Add repository")
    page.wait_for_selector("h1:has-text('team/calc')")
    page.click("text=Check access")
    page.wait_for_selector("text=Readable: 1 branch(es)")
    page.screenshot(path=shots / "repository.png", full_page=True)

    page.goto(f"{base}/tasks/new")
    page.fill("#repo-search", "calc")
    page.select_option("#repository_id", label="team/calc (git, main)")
    page.fill("#prompt", "add() subtracts; make it add")
    page.screenshot(path=shots / "new-task.png", full_page=True)
    page.click("text=Submit task")
    page.wait_for_url(f"{base}/tasks/*")
    task_url = page.url
    initial = page.locator("#log-lines .ln").count()
    # events arrive over SSE while we watch: the log grows, the panels follow
    page.wait_for_selector("#log-lines :text('[mystery_kind]')", timeout=20_000)
    assert page.locator("#log-lines .ln").count() > initial
    page.wait_for_selector("#open-review", timeout=20_000)
    assert page.locator("text=Fix add()").count() >= 1  # the plan tree, swapped in live
    page.screenshot(path=shots / "task.png", full_page=True)

    page.click("#open-review")
    page.wait_for_selector("text=Approve and publish")
    page.screenshot(path=shots / "review-split.png", full_page=True)
    page.click("a[aria-label='Comment on line 3']")
    page.wait_for_selector("tr.comment-form textarea")
    page.fill("tr.comment-form textarea", "nice docstring")
    page.click("tr.comment-form button")
    page.wait_for_selector(".comment:has-text('nice docstring')")
    page.click("text=Explain this change >> nth=0")
    page.wait_for_selector("text=No model is configured")
    page.goto(f"{task_url}/review?view=unified")
    page.screenshot(path=shots / "review-unified.png", full_page=True)
    page.fill("#message", "looks right")
    page.click("#approve")
    page.wait_for_url(task_url)
    page.wait_for_selector("#pr-link", timeout=20_000)
    assert "forge.example" in (page.get_attribute("#pr-link", "href") or "")
    page.screenshot(path=shots / "task-published.png", full_page=True)

    for name in ("models", "audit", "jobs", "analytics", "admin", "repositories"):
        page.goto(f"{base}/{name}")
        page.screenshot(path=shots / f"{name}.png", full_page=True)
    page.goto(f"{base}/audit/verify")
    assert page.locator("text=The chain is intact").count() == 1


def test_viewer_cannot_approve_and_forged_post_is_refused(
    server: ServerProcess, browser: object, origin: Path, shots: Path
) -> None:
    base = server.url
    dev = browser.new_page()  # type: ignore[attr-defined]
    _sign_in(dev, base, "root")
    dev.goto(f"{base}/repositories")
    dev.fill("#name", "team/calc")
    dev.fill("#clone_url", str(origin))
    dev.click("text=Add repository")
    dev.wait_for_selector("h1:has-text('team/calc')")
    dev.goto(f"{base}/tasks/new")
    dev.select_option("#repository_id", label="team/calc (git, main)")
    dev.fill("#prompt", "make add add")
    dev.click("text=Submit task")
    dev.wait_for_url(f"{base}/tasks/*")
    task_url = dev.url
    dev.wait_for_selector("#open-review", timeout=20_000)

    viewer = browser.new_context().new_page()  # type: ignore[attr-defined]
    _sign_in(viewer, base, "vera")
    viewer.goto(f"{task_url}/review")
    viewer.wait_for_selector("text=needs the developer role")
    assert viewer.locator("#approve").count() == 0
    viewer.screenshot(path=shots / "review-viewer.png", full_page=True)
    csrf = viewer.get_attribute("input[name=csrf_token]", "value")
    as_viewer = viewer.request.post(f"{task_url}/approve", form={"csrf_token": csrf or ""})
    assert as_viewer.status == 403

    # a forged POST (no token) from a signed-in developer's browser is refused too
    forged = dev.request.post(f"{task_url}/approve", form={"message": "ok"})
    assert forged.status == 403
    assert "security token" in forged.text()
    status = dev.evaluate(
        "async (u) => (await fetch(u, {method: 'POST', "
        "body: new URLSearchParams({m: '1'})})).status",
        f"{task_url}/approve",
    )
    assert status == 403
    dev.goto(task_url)
    assert dev.locator("[data-status=awaiting_approval]").count() >= 1


def test_chromium_is_the_system_one() -> None:
    assert shutil.which("chromium") == CHROMIUM


def test_big_diff_files_load_when_expanded(
    server: ServerProcess, browser: object, origin: Path, db: Database
) -> None:
    """A diff past the inline budget opens with later files collapsed; "Show diff" swaps
    a file in over HTMX (line comments work there), and the same link works without JS."""
    base = server.url
    page = browser.new_page()  # type: ignore[attr-defined]
    _sign_in(page, base, "root")
    page.goto(f"{base}/repositories")
    page.fill("#name", "team/calc")
    page.fill("#clone_url", str(origin))
    page.click("text=Add repository")
    page.wait_for_selector("h1:has-text('team/calc')")
    page.goto(f"{base}/tasks/new")
    page.select_option("#repository_id", label="team/calc (git, main)")
    page.fill("#prompt", "make add add")
    page.click("text=Submit task")
    page.wait_for_url(f"{base}/tasks/*")
    task_url = page.url
    page.wait_for_selector("#open-review", timeout=20_000)
    with db.write() as s:
        task_store.add_event(
            s,
            task_id=task_url.rsplit("/", 1)[-1],
            kind="review_ready",
            payload={"diff": big_diff(6, 100)},
        )
    page.goto(f"{task_url}/review")
    assert page.locator("section.file.collapsed").count() == 4
    page.click("#f-pkg-mod3-py >> text=Show diff")
    page.wait_for_selector("#f-pkg-mod3-py-5")
    assert page.locator("section.file.collapsed").count() == 3
    page.click("#f-pkg-mod3-py a[aria-label='Comment on line 5']")
    page.fill("tr.comment-form textarea", "why 6?")
    page.click("tr.comment-form button")
    page.wait_for_selector(".comment:has-text('why 6?')")

    plain = browser.new_context(java_script_enabled=False).new_page()  # type: ignore[attr-defined]
    _sign_in(plain, base, "root")
    plain.goto(f"{task_url}/review?view=unified")
    plain.click("#f-pkg-mod4-py >> text=Show diff")
    plain.wait_for_selector("#f-pkg-mod4-py-5")
    assert "open=pkg%2Fmod4.py" in plain.url
    assert plain.locator("section.file.collapsed").count() == 3
