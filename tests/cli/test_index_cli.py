"""`appliance repo index`, `appliance search` and the index column of `appliance repo list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import cli
from tests.index.shop_repo import TRACEBACK, make_shop

pytestmark = pytest.mark.slow

LEXICAL = {"APPLIANCE_INDEX__EMBEDDER": "none"}


def test_index_search_and_list(tmp_path: Path) -> None:
    shop = make_shop(tmp_path)
    assert cli("migrate").returncode == 0
    assert cli("repo", "add", "shop", shop.url).returncode == 0
    before = cli("repo", "list")
    assert "[not indexed]" in before.stdout

    indexed = cli("repo", "index", "shop", env=LEXICAL)
    assert indexed.returncode == 0, indexed.stderr
    assert "full index at" in indexed.stdout
    assert "parse" in indexed.stderr  # progress, stage by stage
    assert "indexed" in cli("repo", "list").stdout

    found = cli("search", "shop", TRACEBACK, "--json", env=LEXICAL)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["path"] == "shop/orders.py"
    assert "named in the request" in hits[0]["reasons"]

    again = cli("repo", "index", "shop", env=LEXICAL)
    assert "index already at" in again.stdout


def test_unknown_or_unindexed_repositories_say_what_to_do(tmp_path: Path) -> None:
    shop = make_shop(tmp_path)
    cli("migrate")
    cli("repo", "add", "shop", shop.url)
    missing = cli("search", "nope", "x")
    assert missing.returncode == 1
    assert "no repository named 'nope'" in missing.stderr
    unindexed = cli("search", "shop", "x", env=LEXICAL)
    assert unindexed.returncode == 1
    assert "appliance repo index shop" in unindexed.stderr
