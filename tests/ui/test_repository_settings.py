"""The repository settings form: what it refuses, and what it stores for the pipeline and
the nightly jobs."""

from __future__ import annotations

import html

from appliance.jobs.schedule import desired_jobs
from appliance.store import repositories as repo_store
from tests.ui.conftest import Ui, sign_in


def _settings(ui: Ui) -> dict[str, object]:
    with ui.db.session() as s:
        return dict(repo_store.get_repository(s, ui.repo_id).settings or {})


def test_an_impossible_nightly_schedule_is_refused_with_the_form_kept(ui: Ui) -> None:
    csrf = sign_in(ui.client, "root")
    resp = ui.client.post(
        f"/repositories/{ui.repo_id}/settings",
        data={
            "csrf_token": csrf,
            "test_command": "make check",
            "protected_paths": "migrations/**",
            "nightly_cron": "61 2 * * *",  # five fields, but there is no minute 61
        },
        follow_redirects=False,
    )
    assert resp.status_code == 422
    page = html.unescape(resp.text)
    assert 'id="nightly_cron-error"' in page  # the error sits at the field
    assert "'61 2 * * *', not a cron expression" in page
    assert 'aria-invalid="true"' in page
    assert 'value="61 2 * * *"' in page  # nothing the admin typed is lost
    assert 'value="make check"' in page
    assert "migrations/**" in page
    assert "nightly_cron" not in _settings(ui)  # nothing was stored
    with ui.db.session() as s:  # so every repository's nightly jobs still sync
        repos = repo_store.list_repositories(s)
    settings = ui.client.app.state.appliance.settings  # type: ignore[attr-defined]
    assert desired_jobs(repos, settings.jobs)


def test_a_valid_nightly_schedule_is_stored(ui: Ui) -> None:
    csrf = sign_in(ui.client, "root")
    resp = ui.client.post(
        f"/repositories/{ui.repo_id}/settings",
        data={"csrf_token": csrf, "nightly_cron": "15 3 * * 1-5"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert _settings(ui)["nightly_cron"] == "15 3 * * 1-5"
    assert 'value="15 3 * * 1-5"' in ui.client.get(f"/repositories/{ui.repo_id}").text


def test_an_emptied_test_command_falls_back_to_detection(ui: Ui) -> None:
    csrf = sign_in(ui.client, "root")
    url = f"/repositories/{ui.repo_id}/settings"
    ui.client.post(url, data={"csrf_token": csrf, "test_command": "pytest -q"})
    assert _settings(ui)["test_command"] == "pytest -q"
    resp = ui.client.post(
        url, data={"csrf_token": csrf, "test_command": "   "}, follow_redirects=False
    )
    assert resp.status_code == 303
    # no key at all: the pipeline's prepare step detects the command from the files
    # ("" would read as "set" and skip the tests every round)
    assert "test_command" not in _settings(ui)
    assert (
        'id="test_command" name="test_command" value=""'
        in ui.client.get(f"/repositories/{ui.repo_id}").text
    )
