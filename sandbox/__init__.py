"""Rootless Podman sandboxes for untrusted code: policy, runner, images.

A library: imports nothing from ``appliance`` or ``ui``. Built by the sandbox issue.
"""
