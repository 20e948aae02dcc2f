"""The intranet web UI (FastAPI + Jinja2 + HTMX). Imports ``appliance``, never the reverse.
Built by the web UI issue; until then ``/`` leads to the API docs.
"""
