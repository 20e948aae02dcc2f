from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from appliance.logs import configure_logging, redactor, request_id_var, task_id_var


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", stream=stream)
    yield stream
    root.handlers[:], root.level = saved


def test_lines_are_json_with_request_and_task_ids(captured: io.StringIO) -> None:
    r, t = request_id_var.set("req-1"), task_id_var.set("task-9")
    try:
        logging.getLogger("appliance.test").info("hello %s", "world")
    finally:
        request_id_var.reset(r)
        task_id_var.reset(t)
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert line["message"] == "hello world"
    assert (line["request_id"], line["task_id"], line["level"]) == ("req-1", "task-9", "INFO")


def test_secrets_never_reach_the_log(captured: io.StringIO) -> None:
    redactor.add_secret("s3cr3t-key-value-xyz")
    log = logging.getLogger("appliance.test")
    token = "apl_" + "A" * 43
    log.info("token %s used", token)
    log.info("Authorization: Bearer abcdefghijklmnop1234")
    log.info("cloning https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.internal/x.git")
    log.info("settings password=hunter22 secret_key=s3cr3t-key-value-xyz")
    log.info("forge token ghp_abcdefghijklmnopqrstuvwxyz0123")
    try:
        raise RuntimeError(f"failed with {token}")
    except RuntimeError:
        log.exception("boom")
    out = captured.getvalue()
    for secret in (
        token,
        "abcdefghijklmnop1234",
        "glpat-abcdefghijklmnopqrst",
        "hunter22",
        "s3cr3t-key-value-xyz",
        "ghp_abcdefghijklmnopqrstuvwxyz0123",
    ):
        assert secret not in out, secret
    assert out.count("***") >= 6
