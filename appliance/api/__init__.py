"""HTTP: the JSON API v1 (FastAPI), SSE streams, probes and metrics."""

from appliance.api.app import create_app

__all__ = ["create_app"]
