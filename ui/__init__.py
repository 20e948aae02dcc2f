"""The intranet web UI: server-rendered pages (FastAPI + Jinja2) with HTMX fragments.

It imports ``appliance`` and goes through the same store and runner functions as the
JSON API. :func:`ui.app.install` mounts it on the application ``create_app`` builds.
"""
