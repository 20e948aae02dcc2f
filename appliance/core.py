"""The appliance's running parts, built from settings: database, event hub, runner.

One instance per process; the API and the UI reach it through ``app.state``.
Building it has no side effects; :meth:`Appliance.start` creates the data dir,
migrates the database and starts the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from appliance.config import EndpointSettings, Settings
from appliance.index.service import IndexService
from appliance.jobs import JobScheduler
from appliance.jobs.forge_publish import branch_host_for, publisher_for
from appliance.logs import redactor
from appliance.pipeline.sandboxes import TaskSandboxes
from appliance.runner import EventHub, Graph, TaskRunner, load_graph
from appliance.store import migrate
from appliance.store.db import Database

if TYPE_CHECKING:
    from models.client import ModelClient
    from models.endpoint import Endpoint
    from models.llamacpp import LlamaCppServer
    from models.monitor import EndpointMonitor

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
        self.index = IndexService(settings)
        # The endpoints the pipeline uses: the configured ones, or the CPU demo model.
        self.model_endpoints: list[EndpointSettings] = list(settings.models.endpoints)
        self.model_server: LlamaCppServer | None = None
        #: the one client the pipeline talks to models through (None: no endpoint at all)
        self.model_client: ModelClient | None = None
        #: probes the endpoints for the API/UI (serving? latency, load)
        self.model_monitor: EndpointMonitor | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._sandbox: Any = None
        #: the sandbox of each running task, shared by its nodes (one container per task)
        self.task_sandboxes = TaskSandboxes()
        self.runner = TaskRunner(
            db=self.db,
            graph=graph or load_graph(settings.runner.graph),
            hub=self.hub,
            concurrency=settings.runner.concurrency,
            services={"appliance": self, "task_stopped": self._task_stopped, **(services or {})},
        )
        #: the nightly maintenance jobs; the pipeline's seams go into ``jobs.services``
        self.jobs = JobScheduler(settings=settings, db=self.db, index=self.index)

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
        await asyncio.to_thread(self._start_cpu_model)
        self._start_model_client()
        await self.runner.start()
        if self.jobs.services.sandbox is None:
            from appliance.jobs.sandbox_runner import PodmanJobSandbox

            self.jobs.services.sandbox = PodmanJobSandbox(self.sandbox)
        if self.jobs.services.repair is None:  # the deps job's repairs: pipeline tasks
            from appliance.jobs.repair import PipelineRepairRunner

            self.jobs.services.repair = PipelineRepairRunner(self)
        if self.jobs.services.publisher is None:  # GitHub/GitLab bump PRs
            self.jobs.services.publisher = functools.partial(publisher_for, self.settings)
        if self.jobs.services.branch_host is None:
            self.jobs.services.branch_host = functools.partial(branch_host_for, self.settings)
        self.jobs.kinds.setdefault("review_poll", self._poll_reviews)
        if self.settings.jobs.enabled:
            await self.jobs.start()
        log.info("appliance started (data dir %s)", self.settings.data_dir.resolve())

    def _start_cpu_model(self) -> None:
        """No endpoint and no GPU: the CPU demo model keeps the whole path working."""
        models = self.settings.models
        if models.endpoints or not models.cpu_fallback or shutil.which("nvidia-smi"):
            return
        from models.errors import ModelsError
        from models.llamacpp import LlamaCppServer, smollm2_gguf

        try:
            server = LlamaCppServer(smollm2_gguf(), ctx=4096)
            server.start()
        except ModelsError as exc:
            log.warning("no model endpoint, and the CPU demo model did not start: %s", exc)
            return
        self.model_server = server
        self.model_endpoints = [
            # the context llama.cpp really serves: budgeting against more would let through
            # prompts the server rejects (HTTP 400, not retried)
            EndpointSettings(
                base_url=server.base_url,
                model=server.model,
                kind="llamacpp",
                context_length=server.ctx,
            )
        ]
        log.warning(
            "no model endpoint configured and no GPU: serving the CPU demo model %s at %s "
            "(it proves the path; it is not a coding model)",
            server.model,
            server.base_url,
        )

    async def _poll_reviews(self, ctx: Any) -> str:
        """The ``review_poll`` job: review comments on open appliance PRs, by polling."""
        from appliance.forges.feedback import poll_review_comments

        delivered = await poll_review_comments(self)
        return f"{delivered} task(s) got review feedback"

    async def _task_stopped(self, task_id: str) -> None:
        """The runner's hook when a task stops running (done, failed, waiting for a
        person): its container goes."""
        await asyncio.to_thread(self.task_sandboxes.release, task_id)

    def sandbox(self) -> Any:
        """The sandbox tasks run commands in: ``services["sandbox"]`` when given (tests),
        else rootless Podman (built on first use; nothing starts until a session opens)."""
        if "sandbox" in self.runner.services:
            return self.runner.services["sandbox"]
        if self._sandbox is None:
            from sandbox.podman import PodmanSandbox

            self._sandbox = PodmanSandbox()
        return self._sandbox

    def endpoints(self) -> list[Endpoint]:
        """The model endpoints as the client takes them, primary first."""
        from models.endpoint import Endpoint

        return [
            Endpoint(
                base_url=ep.base_url,
                model=ep.model,
                kind=ep.kind,
                api_key=ep.api_key.get_secret_value() if ep.api_key else None,
                context_length=ep.context_length,
                action_mode=ep.action_mode,
            )
            for ep in self.model_endpoints
        ]

    def _start_model_client(self) -> None:
        from models.client import ModelClient
        from models.monitor import EndpointMonitor

        endpoints = self.endpoints()
        for ep in endpoints:
            if ep.api_key:
                redactor.add_secret(ep.api_key)
        if not endpoints:
            log.warning(
                "no model endpoint: tasks cannot run; configure models.endpoints or allow "
                "the CPU demo model (models.cpu_fallback)"
            )
            return
        self.model_client = ModelClient(endpoints)
        demo = [self.model_server.base_url] if self.model_server is not None else []
        self.model_monitor = EndpointMonitor(endpoints, demo_urls=demo)
        self._monitor_task = asyncio.create_task(self.model_monitor.run(), name="model-monitor")

    async def stop(self) -> None:
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor_task
            self._monitor_task = None
        if self.model_monitor is not None:
            await self.model_monitor.aclose()
        if self.model_client is not None:
            await self.model_client.aclose()
            self.model_client = None
        if self.model_server is not None:
            await asyncio.to_thread(self.model_server.stop)
            self.model_server = None
        await self.jobs.stop()
        await self.runner.stop()
        await asyncio.to_thread(self.task_sandboxes.release_all)
        await asyncio.to_thread(self.index.close)
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
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
