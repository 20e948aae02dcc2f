"""What a running OpenAI-compatible server says about itself: the models it lists and the
context length it really serves.

Budgeting against a context the server does not have lets prompts through that the server
rejects (HTTP 400, not retried), so the configured ``context_length`` of an endpoint is worth
checking against the server:

* **vLLM** lists ``max_model_len`` for each entry of ``GET /v1/models``.
* **llama.cpp** reports its per-slot context in ``GET /props`` as
  ``default_generation_settings.n_ctx`` (older builds: a top-level ``n_ctx``).
* Other OpenAI-compatible servers usually say nothing; the answer is then ``None``.

The parsing is shared by a blocking (:func:`served_context_length`, for ``appliance doctor``)
and an async (:func:`aserved_context_length`, for the client) fetch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from models.endpoint import Endpoint
from models.errors import NotAModelList

#: characters of an unexpected reply quoted in an error
QUOTE_CHARS = 80


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """The start of ``text`` on one line, for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def model_list(resp: httpx.Response) -> list[dict[str, Any]]:
    """The entries of an OpenAI ``{"object": "list", "data": [{"id": ...}, ...]}`` reply.

    Raises :class:`NotAModelList` quoting the start of the body when it is not JSON, not an
    object, or has no ``data`` list of objects (a proxy's login page, an HTML error page).
    """
    try:
        data = resp.json()
    except ValueError:
        data = None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise NotAModelList(
            "answered /v1/models with something that is not the OpenAI model list: "
            f"{quote(resp.text)!r}"
        )
    return entries


def model_ids(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(e.get("id")) for e in entries]


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def context_from_model_list(entries: Sequence[Mapping[str, Any]], model: str) -> int | None:
    """vLLM's ``max_model_len`` for ``model`` (or for the only entry when ``model`` is '')."""
    if model:
        chosen = [e for e in entries if e.get("id") == model]
    else:
        chosen = list(entries[:1]) if len(entries) == 1 else []
    for entry in chosen:
        found = _positive_int(entry.get("max_model_len"))
        if found is not None:
            return found
    return None


def context_from_props(props: object) -> int | None:
    """llama.cpp's per-slot context from ``GET /props``."""
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    if isinstance(settings, dict):
        found = _positive_int(settings.get("n_ctx"))
        if found is not None:
            return found
    return _positive_int(props.get("n_ctx"))


def _props_context(resp: httpx.Response) -> int | None:
    if resp.status_code != 200:
        return None
    try:
        return context_from_props(resp.json())
    except ValueError:
        return None


def _headers(ep: Endpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}


def served_context_length(
    client: httpx.Client,
    ep: Endpoint,
    entries: Sequence[Mapping[str, Any]] | None = None,
) -> int | None:
    """The context ``ep``'s server serves, or None when it does not say.

    ``entries`` is the already fetched ``/v1/models`` list (fetched here when None). HTTP
    errors of the model list propagate; a missing or odd ``/props`` is just None.
    """
    if ep.kind == "llamacpp":
        try:
            return _props_context(client.get(f"{ep.root}/props", headers=_headers(ep)))
        except httpx.HTTPError:
            return None
    if entries is None:
        resp = client.get(f"{ep.base_url}/models", headers=_headers(ep))
        resp.raise_for_status()
        entries = model_list(resp)
    return context_from_model_list(entries, ep.model)


async def aserved_context_length(
    client: httpx.AsyncClient,
    ep: Endpoint,
    entries: Sequence[Mapping[str, Any]] | None = None,
) -> int | None:
    """:func:`served_context_length` for an async client."""
    if ep.kind == "llamacpp":
        try:
            return _props_context(await client.get(f"{ep.root}/props", headers=_headers(ep)))
        except httpx.HTTPError:
            return None
    if entries is None:
        resp = await client.get(f"{ep.base_url}/models", headers=_headers(ep))
        resp.raise_for_status()
        entries = model_list(resp)
    return context_from_model_list(entries, ep.model)
