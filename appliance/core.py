"""The appliance's running parts, built from settings: database, event hub, runner.

One instance per process; the API and the UI reach it through ``app.state``.
Building it has no side effects; :meth:`Appliance.start` creates the data dir,
migrates the database and starts the runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from appliance.config import Settings
from appliance.logs import redactor
from appliance.runner import EventHub, Graph, TaskRunner, load_graph
from appliance.store import migrate
from appliance.store.db import Database

log = logging.getLogger(__name__)


class Appliance:
    def __init__(
        self,
        settings: Settings,
        *,
        graph: Graph | None = None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
        self.hub = EventHub()
        self.runner = TaskRunner(
            db=self.db,
            graph=graph or load_graph(settings.runner.graph),
            hub=self.hub,
            concurrency=settings.runner.concurrency,
            services=services,
        )

    async def start(self) -> None:
        self.settings.check_secure()
        redactor.add_secret(self.settings.security.secret_key.get_secret_value())
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        before, after = migrate.upgrade(self.db.engine)
        if before != after:
            log.info("database migrated from %s to %s", before or "empty", after)
        # Blocking store calls run in worker threads; the default pool (cores + 4) is too
        # small for many live event streams on a 2-core server.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="appliance-io")
        )
        if self.settings.sandbox.cleanup_on_start:
            await asyncio.to_thread(_remove_sandbox_orphans)
        await self.runner.start()
        log.info("appliance started (data dir %s)", self.settings.data_dir.resolve())

    async def stop(self) -> None:
        await self.runner.stop()
        self.db.dispose()


def _remove_sandbox_orphans() -> None:
    """Containers of tasks cut off by a crash must not outlive it."""
    from sandbox.errors import SandboxError
    from sandbox.podman import PodmanSandbox

    try:
        sandbox = PodmanSandbox()
        try:
            sandbox.cleanup_orphans()
        finally:
            sandbox.close()
    except SandboxError as exc:
        log.warning("sandbox clean-up at start skipped: %s", exc.message)
