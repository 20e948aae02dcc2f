"""Policy defaults, as the issue states them (pure: no Podman)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sandbox.output import CappedBuffer
from sandbox.policy import SandboxPolicy


def test_default_command_timeout_is_600_seconds() -> None:
    policy = SandboxPolicy()
    assert policy.timeout_s == 600
    assert policy.command_timeout(None) == 600


def test_timeout_over_the_900_second_hard_cap_is_refused_with_a_message() -> None:
    assert SandboxPolicy(timeout_s=900).timeout_s == 900
    with pytest.raises(ValidationError, match="at most 900 s per command"):
        SandboxPolicy(timeout_s=901)


def test_command_timeout_is_clamped_to_the_policy() -> None:
    policy = SandboxPolicy(timeout_s=120)
    assert policy.command_timeout(30) == 30
    assert policy.command_timeout(5000) == 120  # a longer request gets the policy's
    assert policy.command_timeout(0) == 0.1  # never zero: the command still starts
    assert SandboxPolicy(timeout_s=900).command_timeout(5000) == 900


def test_output_is_capped_at_1_mib_per_stream_with_a_marker_saying_what_was_dropped() -> None:
    policy = SandboxPolicy()
    assert policy.output_cap_bytes == 2**20
    buffer = CappedBuffer(policy.output_cap_bytes)
    buffer.write(b"BEGIN")
    for _ in range(3 * 1024):
        buffer.write(b"x" * 1024)
    buffer.write(b"END")
    text = buffer.text()
    assert buffer.truncated
    assert text.startswith("BEGIN")
    assert text.endswith("END")
    dropped = 5 + 3 * 2**20 + 3 - 2**20
    assert f"[... {dropped:,} bytes of output dropped (kept the first and last parts) ...]" in text
    assert len(text) < 2**20 + 200


def test_output_under_the_cap_is_kept_whole() -> None:
    buffer = CappedBuffer(SandboxPolicy().output_cap_bytes)
    buffer.write(b"hello\n")
    assert (buffer.text(), buffer.truncated) == ("hello\n", False)


def test_environment_allow_list_admits_locale_and_ci_only_by_default() -> None:
    allowed = SandboxPolicy().env_allow
    assert {"LANG", "LC_ALL", "TZ", "CI"} <= set(allowed)
    for secret in ("AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "HOME", "PATH", "LD_PRELOAD"):
        assert secret not in allowed


def test_network_other_than_none_needs_an_administrator() -> None:
    from sandbox.errors import PolicyError

    with pytest.raises(PolicyError, match="network 'bridge' is not allowed"):
        SandboxPolicy(network="bridge").check_network()
    SandboxPolicy(network="bridge", allowed_networks=("none", "bridge")).check_network()


def test_session_lifetime_defaults_to_the_task_budget_and_is_configurable() -> None:
    assert SandboxPolicy().session_max_s == 3600  # pipeline.max_minutes = 60
    assert SandboxPolicy(session_max_s=600).session_max_s == 600
    with pytest.raises(ValidationError):
        SandboxPolicy(session_max_s=10)
