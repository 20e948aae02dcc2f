"""A registered repository's forge: its stored settings, sealed secrets, and the forge built
from them.

What a repository keeps in its ``settings`` JSON (see :data:`FORGE_KEY` and friends):

* ``forge``: the :class:`~appliance.forges.settings.ForgeSettings` fields except ``kind``
  (the repository's ``forge_kind``) and ``token``, plus ``project`` (GitHub ``owner/name``,
  GitLab ``group/project`` or id; derived from the clone URL when absent) and ``draft``;
* ``forge_token_encrypted``: the token, encrypted with the appliance secret key
  (:func:`appliance.forges.secrets.encrypt`);
* ``webhook_secret_encrypted``: the secret GitHub signs webhooks with / GitLab sends in
  ``X-Gitlab-Token``, encrypted the same way.

Plain values never reach the database: :func:`seal_settings` takes what an API call or
the CLI sends (``forge.token``, ``webhook_secret`` in clear) and encrypts them;
:func:`public_settings` gives the only form fit for a page or a JSON answer (masked).
"""

from __future__ import annotations

import secrets as pysecrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr, ValidationError

from appliance.config import Settings
from appliance.errors import InvalidInput
from appliance.forges import build_forge
from appliance.forges.base import Forge
from appliance.forges.errors import ForgeTokenUnreadable
from appliance.forges.gitpush import transport_config
from appliance.forges.rules import PrQuota
from appliance.forges.secrets import decrypt, encrypt, mask
from appliance.forges.settings import ForgeSettings
from appliance.repos.mirror import FetchAccess
from appliance.store.models import Repository

FORGE_KEY = "forge"
TOKEN_KEY = "forge_token_encrypted"  # noqa: S105 - a settings key, not a secret
WEBHOOK_KEY = "webhook_secret_encrypted"
SECRET_SET = "set (not shown)"  # noqa: S105 - a label, not a secret
#: keys of ``settings["forge"]`` that are not ForgeSettings fields
EXTRA_FORGE_KEYS = ("project", "draft")
_SEALED = (TOKEN_KEY, WEBHOOK_KEY)


def secret_key(settings: Settings) -> str:
    return settings.security.secret_key.get_secret_value()


def new_webhook_secret() -> str:
    """A random secret to configure on the forge's webhook (shown once)."""
    return pysecrets.token_urlsafe(32)


def seal_settings(
    incoming: Mapping[str, Any],
    key: str,
    *,
    kind: str,
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Repository settings as stored: clear secrets encrypted, the forge block checked.

    ``incoming`` may carry ``forge: {..., token: "..."}`` and ``webhook_secret: "..."`` in
    clear; they are encrypted into :data:`TOKEN_KEY` / :data:`WEBHOOK_KEY`. Sealed values
    sent back as they were shown (masked) or given directly are refused: a secret is
    only ever set in clear, and kept when not sent again (``current``).
    """
    settings = dict(incoming)
    for sealed in _SEALED:
        settings.pop(sealed, None)
        if current and sealed in current:
            settings[sealed] = current[sealed]
    forge = dict(settings.get(FORGE_KEY) or {})
    forge.pop("kind", None)  # the repository's forge_kind decides
    token = forge.pop("token", None)
    if token:
        settings[TOKEN_KEY] = encrypt(str(token), key)
    secret = settings.pop("webhook_secret", None)
    if secret:
        settings[WEBHOOK_KEY] = encrypt(str(secret), key)
    if forge or FORGE_KEY in settings:
        check_ca_bundle(check_forge_block(forge, kind))
        settings[FORGE_KEY] = forge
    return settings


def check_ca_bundle(forge: ForgeSettings) -> ForgeSettings:
    """Refuse a CA bundle path with no file behind it, when the settings are given (a file
    removed later shows as a certificate error at the next forge call)."""
    path = forge.ca_bundle
    if path is not None and not path.is_file():
        raise InvalidInput(
            f"the forge settings are not valid: forge.ca_bundle: the file {path} does not "
            "exist on the appliance (or is not a file): copy the PEM file of the CA that "
            "signed the forge's certificate there, or fix the path",
            field="settings.forge.ca_bundle",
        )
    return forge


def check_forge_block(forge: Mapping[str, Any], kind: str) -> ForgeSettings:
    """Validate ``settings["forge"]`` as ForgeSettings; a clear message on a bad field."""
    fields = {k: v for k, v in forge.items() if k not in EXTRA_FORGE_KEYS}
    try:
        return ForgeSettings.model_validate({**fields, "kind": kind})
    except ValidationError as exc:
        problems = "; ".join(
            f"forge.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"the forge settings are not valid: {problems}") from exc


def public_settings(settings: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Settings fit for display: sealed secrets replaced by a mask (or a note)."""
    shown = {k: v for k, v in settings.items() if k not in _SEALED}
    if TOKEN_KEY in settings:
        try:
            hint = mask(decrypt(str(settings[TOKEN_KEY]), key))
        except ForgeTokenUnreadable:
            hint = "stored, unreadable with the current secret key: set it again"
        shown["forge_token"] = hint
    if WEBHOOK_KEY in settings:
        shown["webhook_secret"] = SECRET_SET
    return shown


def forge_token(settings: Settings, repo: Repository) -> str | None:
    stored = (repo.settings or {}).get(TOKEN_KEY)
    return decrypt(str(stored), secret_key(settings)) if stored else None


def webhook_secret(settings: Settings, repo: Repository) -> str | None:
    stored = (repo.settings or {}).get(WEBHOOK_KEY)
    return decrypt(str(stored), secret_key(settings)) if stored else None


def forge_settings(settings: Settings, repo: Repository) -> ForgeSettings:
    """The ForgeSettings of ``repo``: its forge block, the repository-level protected
    branches, and the decrypted token."""
    stored = dict(repo.settings or {})
    block = {k: v for k, v in (stored.get(FORGE_KEY) or {}).items() if k not in EXTRA_FORGE_KEYS}
    protected = [*block.pop("protected_branches", []), *stored.get("protected_branches", [])]
    forge = check_forge_block({**block, "protected_branches": protected}, repo.forge_kind.value)
    token = forge_token(settings, repo)
    return forge.model_copy(update={"token": SecretStr(token) if token else None})


def fetch_access(settings: Settings, repo: Repository) -> FetchAccess:
    """What a clone or fetch of ``repo`` needs: the decrypted token, and the CA bundle, TLS
    switch and proxy as git settings (the same ones the push uses). Every fetch of a
    registered repository goes through this: the index refresh, the pipeline, the CLI,
    the API and the jobs."""
    cfg = forge_settings(settings, repo)
    return FetchAccess(token=cfg.token_value(), transport=transport_config(cfg))


def forge_project(repo: Repository) -> str:
    """What the forge calls the repository: ``forge.project``, else the clone URL's path
    (``https://github.com/acme/widgets.git`` → ``acme/widgets``); git: the clone URL."""
    if repo.forge_kind.value == "git":
        return repo.clone_url
    project = (repo.settings or {}).get(FORGE_KEY, {}).get("project")
    if project:
        return str(project)
    url = repo.clone_url
    # https://host/group/project.git, or scp-like git@host:group/project.git
    path = urllib.parse.urlsplit(url).path if "://" in url else url.split(":", 1)[-1]
    return path.strip("/").removesuffix(".git")


def wants_draft(settings: Settings, repo: Repository) -> bool:
    draft = (repo.settings or {}).get(FORGE_KEY, {}).get("draft")
    return settings.forges.draft if draft is None else bool(draft)


def forge_for(
    settings: Settings,
    repo: Repository,
    *,
    quota: PrQuota | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Forge:
    """The forge of ``repo``, built from its stored settings; nothing is contacted yet."""
    return build_forge(
        forge_settings(settings, repo), forge_project(repo), quota=quota, sleep=sleep, clock=clock
    )
