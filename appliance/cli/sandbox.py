"""``appliance sandbox``: build, save and load the sandbox images; clean up leftovers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.common import fail, friendly
from sandbox import images
from sandbox.errors import SandboxError
from sandbox.service import SandboxUser

sandbox_app = typer.Typer(help="Sandbox images and housekeeping.", no_args_is_help=True)

KindArg = Annotated[str, typer.Argument(help=f"Image kind: {', '.join(images.RECIPES)}.")]


@sandbox_app.command("build-image")
@friendly
def build_image(
    kind: KindArg,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing when the image exists.")
    ] = False,
) -> None:
    """Build a sandbox image offline from the host's package mirror (mmdebstrap +
    podman import + podman build --network=none); ~1 min."""
    try:
        name = images.build(
            kind, user=SandboxUser.lookup(), if_missing=if_missing, progress=typer.echo
        )
    except SandboxError as exc:
        raise fail(exc.message) from exc
    typer.echo(name)


@sandbox_app.command("save-image")
@friendly
def save_image(
    kind: KindArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Tarball to write.")],
) -> None:
    """Write an image to a tarball for an air-gapped host."""
    try:
        images.save(kind, output, user=SandboxUser.lookup())
    except SandboxError as exc:
        raise fail(exc.message) from exc
    typer.echo(f"wrote {output}")


@sandbox_app.command("load-image")
@friendly
def load_image(
    archive: Annotated[Path, typer.Argument(help="Tarball written by save-image.")],
) -> None:
    """Load an image tarball into the sandbox user's image store."""
    try:
        images.load(archive, user=SandboxUser.lookup())
    except SandboxError as exc:
        raise fail(exc.message) from exc
    typer.echo(f"loaded {archive}")


@sandbox_app.command("cleanup")
@friendly
def cleanup() -> None:
    """Remove sandbox containers and cgroups left by a crash."""
    from sandbox.podman import PodmanSandbox

    try:
        removed = PodmanSandbox().cleanup_orphans()
    except SandboxError as exc:
        raise fail(exc.message) from exc
    typer.echo(f"removed {removed} container(s)")
