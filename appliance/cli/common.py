"""Shared CLI plumbing: settings, the database, and turning errors into messages."""

from __future__ import annotations

import functools
import getpass
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from appliance.config import Settings, load_settings
from appliance.errors import ApplianceError, ConfigError
from appliance.store import migrate
from appliance.store.db import Database

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Show domain errors as one clear line and a non-zero exit, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise fail(exc.message, 2) from exc
        except ApplianceError as exc:
            raise fail(exc.message) from exc

    return wrapper


def settings() -> Settings:
    return load_settings()


def open_db(cfg: Settings) -> Database:
    """The database, which must already be migrated."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(cfg.database_url, busy_timeout_ms=cfg.database.busy_timeout_ms)
    if not migrate.is_current(db.engine):
        db.dispose()
        raise ConfigError(
            f"the database at {cfg.database_url} is not initialised or is out of date: "
            "run `appliance migrate` first"
        )
    return db


def local_actor() -> str:
    """Who a command on this host acts as, for the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def read_text_arg(value: str) -> str:
    """``-`` means standard input."""
    return sys.stdin.read() if value == "-" else value
