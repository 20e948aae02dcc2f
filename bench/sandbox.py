"""Sandbox benchmark: what a rootless Podman sandbox costs to open, to exec in, and to test in.

Drives the real :class:`sandbox.podman.PodmanSandbox` (the user ``appliance-sandbox``'s
Podman API service, the image ``localhost/appliance-sandbox-python:1``) with the policy
``SandboxPolicy(cpus=<all host CPUs>, memory_mb=2048, pids=512)``: the CPU quota equals
the machine's cores so that it does not handicap the container against the host. It
removes orphaned sandboxes first (``cleanup_orphans()``), then measures, in one run:

1. **Cold open**: N times, a fresh temporary worktree and task id, the time of
   ``open()`` (ACLs on the worktree, per-task cgroups, create + start of the container)
   plus the first ``session.run(["true"])``; also both parts on their own and the time
   of ``close()``. One warm-up open (the first after the service started may be slower)
   is reported but not counted.
2. **Per-exec overhead**: in one open session, ``session.run(["true"])`` M times against
   ``subprocess.run(["true"])`` on the host M times; overhead = median(sandbox) -
   median(host). A sandbox exec is an exec create + start + attach + exit-code query
   through the API service, and the command runs under ``timeout -s KILL``.
3. **A small pytest suite** (generated: 5 files x 20 tests, a fixture, some CPU work,
   parametrised tests) run R times on the host and R times in a sandbox whose worktree
   is the suite, interleaved, after a warm-up run of each; ratio = median(sandbox wall) /
   median(host wall). Both sides run ``python -m pytest -q -p no:cacheprovider`` with
   ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`` and ``PYTHONDONTWRITEBYTECODE=1`` (the sandbox sets
   the latter itself), so neither loads extra plugins or writes caches. The time pytest
   prints ("100 passed in 0.52s") is reported next to the wall time: wall - printed is
   interpreter + pytest start-up (+ the exec overhead in the sandbox). To compare like
   with like, the host side runs the same Python and pytest as the container: a host
   Python of the container's version (Debian's /usr/bin/python3 on the appliance, as in
   the image) with the image's own site packages, copied out through a sandbox, as its
   PYTHONPATH. Where the host has no such Python, it falls back to a host Python with
   pytest (the container's minor version first; ``--host-python`` to choose one) and the
   output says that the versions differ. The ratio is also given with the median per-exec
   overhead taken off the sandbox's wall time: on a suite this short (about 0.3 s on the
   host) that fixed cost of one exec weighs heavily.

Targets (from the issue): cold open < 1 s median, per-exec overhead < 150 ms, test run
<= 1.3x host time. (For reference: sandbox start-up is a top complaint about peer agents,
at 15-60 s.) They are reported as met or MISSED; a missed target does not change the exit
status. Exit status: 0 when the run completed, 2 when no sandbox can be opened here
(Podman, its service, the sandbox user or the image is missing), 1 when the harness
itself broke. Run it as root (or as the sandbox user), on a machine where nothing else
uses the sandboxes: ``cleanup_orphans()`` removes every sandbox container there is.

    .venv/bin/python bench/sandbox.py                       # 20 opens, 50 execs, 5 runs
    .venv/bin/python bench/sandbox.py --opens 5 --execs 10 --runs 2 --json
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder (bench/) comes first on sys.path, and this very file
# would shadow the `sandbox` package: put the repository root before it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bench.figures import ms_text, percentile, rounded
from sandbox.base import EnforcedLimits, RunResult
from sandbox.errors import SandboxUnavailable
from sandbox.podman import PodmanSandbox, PodmanSession
from sandbox.policy import SandboxPolicy

TARGET_OPEN_MEDIAN_MS = 1000.0
TARGET_EXEC_OVERHEAD_MS = 150.0
TARGET_TEST_RATIO = 1.3
PEER_STARTUP = "15-60 s"

MEMORY_MB = 2048
PIDS = 512
SUITE_FILES = 5
PYTEST_ARGS = ("-m", "pytest", "-q", "-p", "no:cacheprovider")
PYTEST_TIMEOUT_S = 300.0
CONTAINER_SITE = "/usr/lib/python3/dist-packages"
_PASSED = re.compile(r"(\d+) passed\b.* in ([0-9.]+)s")
_PROBE = (
    "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])\n"
    "try:\n    import pytest; print(pytest.__version__)\n"
    "except ImportError:\n    print('-')"
)


class HarnessError(RuntimeError):
    """Something the benchmark relies on did not behave."""


# --- figures -----------------------------------------------------------------------


def summary(values_s: list[float]) -> dict[str, float | int | None]:
    """Count, median, p95, min and max of durations given in seconds, in milliseconds."""
    ms = [v * 1000.0 for v in values_s]
    return {
        "count": len(ms),
        "median_ms": rounded(statistics.median(ms) if ms else None),
        "p95_ms": rounded(percentile(ms, 95)),
        "min_ms": rounded(min(ms) if ms else None),
        "max_ms": rounded(max(ms) if ms else None),
    }


def _diff(a: float | int | None, b: float | int | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)


def _ratio(a: float | int | None, b: float | int | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


# --- 1. cold open ------------------------------------------------------------------


@dataclass
class Bench:
    sandbox: PodmanSandbox
    policy: SandboxPolicy
    workdir: Path
    run_id: str
    _n: int = 0

    def task_id(self, what: str) -> str:
        self._n += 1
        return f"bench-{self.run_id}-{what}-{self._n}"

    def worktree(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="worktree-", dir=self.workdir))


def check(result: RunResult, what: str) -> None:
    if not result.ok:
        raise HarnessError(
            f"{what} failed: exit {result.exit_code}, timed out {result.timed_out}, "
            f"stdout {result.stdout[-500:]!r}, stderr {result.stderr[-500:]!r}"
        )


def one_cold_open(bench: Bench) -> tuple[float, float, float]:
    """open() + the first `true` in a fresh container; (open s, first exec s, close s)."""
    worktree = bench.worktree()
    started = time.perf_counter()
    session = bench.sandbox.open(worktree, bench.policy, task_id=bench.task_id("open"))
    try:
        opened = time.perf_counter()
        result = session.run(["true"])
        ran = time.perf_counter()
        check(result, "`true` in a fresh sandbox")
    finally:
        closing = time.perf_counter()
        session.close()
        closed = time.perf_counter()
    return opened - started, ran - opened, closed - closing


def cold_open(bench: Bench, opens: int, warmup: int) -> dict[str, Any]:
    warmups = [sum(one_cold_open(bench)[:2]) for _ in range(warmup)]
    open_s: list[float] = []
    exec_s: list[float] = []
    close_s: list[float] = []
    for _ in range(opens):
        o, e, c = one_cold_open(bench)
        open_s.append(o)
        exec_s.append(e)
        close_s.append(c)
    return {
        "warmup_ms": [rounded(v * 1000.0) for v in warmups],
        "open_and_first_exec": summary([o + e for o, e in zip(open_s, exec_s, strict=True)]),
        "open": summary(open_s),
        "first_exec": summary(exec_s),
        "close": summary(close_s),
    }


# --- 2. per-exec overhead ----------------------------------------------------------


def exec_overhead(bench: Bench, execs: int, warmup: int) -> dict[str, Any]:
    sandbox_s: list[float] = []
    host_s: list[float] = []
    with bench.sandbox.open(
        bench.worktree(), bench.policy, task_id=bench.task_id("exec")
    ) as session:
        for i in range(warmup + execs):
            started = time.perf_counter()
            result = session.run(["true"])
            elapsed = time.perf_counter() - started
            check(result, "`true` in the sandbox")
            if i >= warmup:
                sandbox_s.append(elapsed)
    for i in range(warmup + execs):
        started = time.perf_counter()
        subprocess.run(["true"], check=True)
        elapsed = time.perf_counter() - started
        if i >= warmup:
            host_s.append(elapsed)
    sandbox, host = summary(sandbox_s), summary(host_s)
    return {
        "sandbox": sandbox,
        "host": host,
        "overhead_median_ms": _diff(sandbox["median_ms"], host["median_ms"]),
        "overhead_p95_ms": _diff(sandbox["p95_ms"], host["p95_ms"]),
    }


# --- 3. a small pytest suite -------------------------------------------------------

CONFTEST = """\
import pytest


@pytest.fixture
def numbers():
    return list(range(1000))
"""

TEST_FILE = """\
import hashlib

import pytest

K = {k}


{simple}

def test_fixture_sum(numbers):
    assert sum(numbers) == 499500


def test_string_ops():
    text = "-".join(str(i) for i in range(200))
    assert text.split("-")[K] == str(K)
    assert text.upper().count("-") == 199


def test_cpu_primes():
    primes = [n for n in range(2, 15000) if all(n % d for d in range(2, int(n**0.5) + 1))]
    assert len(primes) == 1754


def test_cpu_hash_chain():
    digest = str(K).encode()
    for _ in range(20000):
        digest = hashlib.sha256(digest).digest()
    assert len(digest) == 32


def test_cpu_sort():
    x, values = K + 1, []
    for _ in range(40000):
        x = (x * 1103515245 + 12345) % 2**31
        values.append(x)
    ordered = sorted(values)
    assert all(a <= b for a, b in zip(ordered, ordered[1:]))


@pytest.mark.parametrize("n", [10, 100, 1000, 3000])
def test_fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    assert a < b
"""

SIMPLE_TESTS_PER_FILE = 11
TESTS_PER_FILE = SIMPLE_TESTS_PER_FILE + 5 + 4


def write_suite(directory: Path, files: int = SUITE_FILES) -> int:
    """Write the generated suite; return the number of tests in it."""
    (directory / "pytest.ini").write_text("[pytest]\n")  # pins the rootdir here
    (directory / "conftest.py").write_text(CONFTEST)
    for k in range(files):
        simple = "\n\n".join(
            f"def test_add_{i}():\n    assert {i} + K == {i + k}\n"
            for i in range(SIMPLE_TESTS_PER_FILE)
        )
        (directory / f"test_mod{k}.py").write_text(TEST_FILE.format(k=k, simple=simple))
    return files * TESTS_PER_FILE


@dataclass(frozen=True)
class Interpreter:
    executable: str
    python: str
    pytest: str | None
    # Where the host side borrows the container's own site packages (copied out of the image).
    pythonpath: str | None = None

    @property
    def minor(self) -> str:
        return ".".join(self.python.split(".")[:2])


def parse_probe(stdout: str) -> Interpreter | None:
    lines = stdout.split()
    if len(lines) != 3:
        return None
    return Interpreter(lines[0], lines[1], None if lines[2] == "-" else lines[2])


def host_env(pythonpath: str | None) -> dict[str, str]:
    """A small, fixed environment for the host side (the sandbox's is as small)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def probe_host(command: str, pythonpath: str | None = None) -> Interpreter | None:
    try:
        result = subprocess.run(
            [command, "-c", _PROBE],
            env=host_env(pythonpath),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = parse_probe(result.stdout) if result.returncode == 0 else None
    if found is None or pythonpath is None:
        return found
    return Interpreter(found.executable, found.python, found.pytest, pythonpath)


def copy_container_site(bench: Bench) -> str:
    """The image's site packages, copied out into a host folder through a sandbox."""
    site = bench.worktree()
    with bench.sandbox.open(site, bench.policy, task_id=bench.task_id("site")) as session:
        result = session.run(["cp", "-a", CONTAINER_SITE, "/workspace/site"])
        check(result, f"copying {CONTAINER_SITE} out of the sandbox")
    return str(site / "site")


def choose_host_python(
    bench: Bench, container: Interpreter, explicit: str | None
) -> tuple[Interpreter, str]:
    """The host interpreter for the suite, and why it was chosen: in order of preference,
    one with the container's Python and pytest versions; one with the container's Python
    version, given the container's own site packages; one with pytest and the container's
    Python minor version; one with pytest."""
    if explicit:
        found = probe_host(explicit)
        if found is None or found.pytest is None:
            raise HarnessError(f"--host-python {explicit}: not a Python with pytest")
        return found, "chosen with --host-python"
    probed: dict[str, Interpreter] = {}
    for command in (
        "/usr/bin/python3",
        f"/usr/bin/python{container.minor}",
        shutil.which("python3"),
        sys.executable,
    ):
        found = probe_host(command) if command else None
        if found is not None:
            probed.setdefault(found.executable, found)
    for found in probed.values():
        if found.python == container.python and found.pytest == container.pytest:
            return found, "a host Python with the container's Python and pytest versions"
    for found in probed.values():
        if found.python == container.python:
            borrowed = probe_host(found.executable, copy_container_site(bench))
            if borrowed is not None and borrowed.pytest == container.pytest:
                return borrowed, (
                    f"the host's Python {found.python}, the container's version, with the "
                    f"container's own {CONTAINER_SITE} copied out of the image as its "
                    "PYTHONPATH, so that both sides run the same Python and pytest"
                )
    with_pytest = [found for found in probed.values() if found.pytest is not None]
    for found in with_pytest:
        if found.minor == container.minor:
            return found, (
                f"no host Python {container.python}; the first host Python "
                f"{container.minor} with pytest"
            )
    if with_pytest:
        return with_pytest[0], (
            f"no host Python {container.minor} with pytest; the first Python with pytest"
        )
    raise HarnessError("no Python with pytest on this host (pass --host-python)")


def pytest_time(output: str, tests: int, where: str) -> float:
    """The time pytest printed on its summary line, in seconds (all tests must pass)."""
    for line in reversed(output.splitlines()):
        match = _PASSED.search(line)
        if match and int(match.group(1)) == tests and "failed" not in line and "error" not in line:
            return float(match.group(2))
    raise HarnessError(f"the suite did not pass {where}:\n{output[-1500:]}")


def host_pytest(python: Interpreter, suite: Path, tests: int) -> tuple[float, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [python.executable, *PYTEST_ARGS],
        cwd=suite,
        env=host_env(python.pythonpath),
        capture_output=True,
        text=True,
        timeout=PYTEST_TIMEOUT_S,
        check=False,
    )
    wall = time.perf_counter() - started
    return wall, pytest_time(result.stdout + result.stderr, tests, "on the host")


def sandbox_pytest(session: PodmanSession, tests: int) -> tuple[float, float]:
    started = time.perf_counter()
    result = session.run(
        ["env", "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1", "python3", *PYTEST_ARGS],
        timeout=PYTEST_TIMEOUT_S,
    )
    wall = time.perf_counter() - started
    return wall, pytest_time(result.stdout + result.stderr, tests, "in the sandbox")


def pytest_suite(bench: Bench, runs: int, warmup: int, host_python: str | None) -> dict[str, Any]:
    suite = bench.worktree()
    tests = write_suite(suite)
    host_wall: list[float] = []
    host_printed: list[float] = []
    box_wall: list[float] = []
    box_printed: list[float] = []
    with bench.sandbox.open(suite, bench.policy, task_id=bench.task_id("pytest")) as session:
        probe = session.run(["python3", "-c", _PROBE])
        check(probe, "probing the container's Python")
        container = parse_probe(probe.stdout)
        if container is None or container.pytest is None:
            raise HarnessError(f"the image has no Python with pytest: {probe.stdout!r}")
        host, why = choose_host_python(bench, container, host_python)
        for i in range(warmup + runs):  # interleaved, so that drift hits both sides
            h = host_pytest(host, suite, tests)
            b = sandbox_pytest(session, tests)
            if i >= warmup:
                host_wall.append(h[0])
                host_printed.append(h[1])
                box_wall.append(b[0])
                box_printed.append(b[1])

    def side(who: Interpreter, wall: list[float], printed: list[float]) -> dict[str, Any]:
        w, p = summary(wall), summary(printed)
        return {
            "python": who.python,
            "pytest": who.pytest,
            "executable": who.executable,
            "container_site_packages": who.pythonpath is not None,
            "wall": w,
            "printed": p,
            "startup_median_ms": _diff(w["median_ms"], p["median_ms"]),
        }

    host_fig = side(host, host_wall, host_printed)
    box_fig = side(container, box_wall, box_printed)
    same = host.python == container.python and host.pytest == container.pytest
    if same:
        note = f"both sides run Python {host.python} and pytest {host.pytest}: {why}"
    else:
        note = (
            f"the versions differ (host Python {host.python} + pytest {host.pytest}, "
            f"container Python {container.python} + pytest {container.pytest}): "
            f"the host side uses {host.executable}, {why}; the Python minor "
            f"{'matches' if host.minor == container.minor else 'DIFFERS'}, so the remaining "
            "gap includes pytest's own version (its start-up and collection cost); pass "
            "--host-python with a Python that has the container's pytest for an exact match"
        )
    return {
        "tests": tests,
        "files": SUITE_FILES,
        "host": host_fig,
        "sandbox": box_fig,
        "ratio_wall": _ratio(box_fig["wall"]["median_ms"], host_fig["wall"]["median_ms"]),
        "ratio_printed": _ratio(box_fig["printed"]["median_ms"], host_fig["printed"]["median_ms"]),
        "same_versions": same,
        "host_choice": why,
        "note": note,
    }


# --- the report --------------------------------------------------------------------


def podman_version() -> str | None:
    """The version of the podman binary on this host (the API service runs the same)."""
    try:
        result = subprocess.run(
            ["podman", "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = result.stdout.split()
    return words[-1] if result.returncode == 0 and words else None


def figures(
    args: argparse.Namespace,
    policy: SandboxPolicy,
    *,
    orphans: int,
    podman: str | None,
    enforced: EnforcedLimits,
    opens: dict[str, Any],
    execs: dict[str, Any],
    suite: dict[str, Any],
    elapsed: float,
) -> dict[str, Any]:
    open_median = opens["open_and_first_exec"]["median_ms"]
    overhead = execs["overhead_median_ms"]
    ratio = suite["ratio_wall"]
    box_wall = suite["sandbox"]["wall"]["median_ms"]
    suite["ratio_wall_less_exec_overhead"] = _ratio(
        _diff(box_wall, overhead), suite["host"]["wall"]["median_ms"]
    )
    targets: dict[str, dict[str, Any]] = {
        f"cold open median < {TARGET_OPEN_MEDIAN_MS:.0f} ms": {
            "value_ms": open_median,
            "met": open_median is not None and open_median < TARGET_OPEN_MEDIAN_MS,
        },
        f"per-exec overhead < {TARGET_EXEC_OVERHEAD_MS:.0f} ms": {
            "value_ms": overhead,
            "met": overhead is not None and overhead < TARGET_EXEC_OVERHEAD_MS,
        },
        f"pytest sandbox/host <= {TARGET_TEST_RATIO:g}x": {
            "value_x": ratio,
            "met": ratio is not None and ratio <= TARGET_TEST_RATIO,
        },
    }
    return {
        "config": {
            "opens": args.opens,
            "execs": args.execs,
            "runs": args.runs,
            "warmup": args.warmup,
            "policy": {
                "image": policy.image,
                "cpus": policy.cpus,
                "memory_mb": policy.memory_mb,
                "pids": policy.pids,
                "network": policy.network,
            },
            "host_cpus": os.cpu_count(),
            "podman": podman,
            "limits_enforced": {
                "memory": enforced.memory,
                "pids": enforced.pids,
                "cpu": enforced.cpu,
                "notes": list(enforced.notes),
            },
            "orphans_removed": orphans,
        },
        "elapsed_s": round(elapsed, 1),
        "cold_open": opens,
        "exec": execs,
        "pytest": suite,
        "targets": targets,
        "all_targets_met": all(t["met"] for t in targets.values()),
        "peer_startup_reference": PEER_STARTUP,
    }


HEADER = f"{'':<34}{'count':>6}{'median ms':>11}{'p95 ms':>9}{'min ms':>9}{'max ms':>9}"


def _row(label: str, row: dict[str, Any]) -> str:
    return (
        f"{label:<34}{row['count']:>6}{ms_text(row['median_ms']):>11}{ms_text(row['p95_ms']):>9}"
        f"{ms_text(row['min_ms']):>9}{ms_text(row['max_ms']):>9}"
    )


def render(fig: dict[str, Any]) -> str:
    cfg, pol, lim = fig["config"], fig["config"]["policy"], fig["config"]["limits_enforced"]
    enforced = [k for k in ("memory", "pids", "cpu") if lim[k]]
    co, ex, py = fig["cold_open"], fig["exec"], fig["pytest"]
    borrowed = " + the container's site packages" if py["host"]["container_site_packages"] else ""
    out = [
        f"Sandbox benchmark: podman {cfg['podman'] or '?'}, {cfg['host_cpus']} host CPUs, "
        f"elapsed {fig['elapsed_s']:.1f} s, {cfg['orphans_removed']} orphan(s) removed at start",
        f"policy: image {pol['image']}, cpus {pol['cpus']:g}, memory {pol['memory_mb']} MiB, "
        f"pids {pol['pids']}, network {pol['network']}; limits enforced: "
        f"{', '.join(enforced) or 'none'} ({'; '.join(lim['notes'])})",
        "",
        f"cold open: {cfg['opens']} fresh containers (fresh worktree and task id each)",
        HEADER,
        _row("open() + first `true`", co["open_and_first_exec"]),
        _row("  open()", co["open"]),
        _row("  first `true`", co["first_exec"]),
        _row("close()", co["close"]),
    ]
    if co["warmup_ms"]:
        out.append(
            "warm-up open() + first `true` (not counted): "
            + ", ".join(f"{ms_text(v)} ms" for v in co["warmup_ms"])
        )
    out += [
        "",
        f"per-exec: {cfg['execs']} x `true` in one open session vs on the host",
        HEADER,
        _row('sandbox session.run(["true"])', ex["sandbox"]),
        _row('host subprocess.run(["true"])', ex["host"]),
        f"overhead (sandbox - host): median {ms_text(ex['overhead_median_ms'])} ms, "
        f"p95 {ms_text(ex['overhead_p95_ms'])} ms",
        "",
        f"pytest suite: {py['tests']} tests in {py['files']} files, {cfg['runs']} runs per side "
        f"(interleaved, after {cfg['warmup']} warm-up run(s) each), "
        "`python -m pytest -q -p no:cacheprovider`, no plugin autoload, no bytecode",
        f"{'':<10}{'python':>8}{'pytest':>8}{'wall med':>10}{'wall p95':>10}"
        f"{'printed med':>13}{'wall-printed':>14}  (ms)",
    ]
    for name in ("host", "sandbox"):
        s = py[name]
        out.append(
            f"{name:<10}{s['python']:>8}{s['pytest']:>8}{ms_text(s['wall']['median_ms']):>10}"
            f"{ms_text(s['wall']['p95_ms']):>10}{ms_text(s['printed']['median_ms']):>13}"
            f"{ms_text(s['startup_median_ms']):>14}"
        )
    out += [
        f"ratio sandbox/host: wall {py['ratio_wall']}x; wall less the median per-exec overhead "
        f"{py['ratio_wall_less_exec_overhead']}x; time printed by pytest {py['ratio_printed']}x",
        "('printed' is pytest's own 'N passed in T s'; wall - printed is interpreter + pytest "
        "start-up, plus the exec overhead in the sandbox)",
        f"host interpreter: {py['host']['executable']}{borrowed}",
        f"note: {py['note']}",
        "",
        "targets:",
    ]
    for name, target in fig["targets"].items():
        shown = (
            f"{ms_text(target['value_ms'])} ms" if "value_ms" in target else f"{target['value_x']}x"
        )
        out.append(f"  {'met   ' if target['met'] else 'MISSED'}  {name:<34} ({shown})")
    out.append(f"all targets met: {'yes' if fig['all_targets_met'] else 'NO'}")
    out.append(f"(for reference: peer agents' sandbox start-up is reported at {PEER_STARTUP})")
    return "\n".join(out)


# --- entry point -------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/sandbox.py",
        description=(
            "Measure the rootless Podman sandbox: cold open (create + start + first exec), "
            "per-exec overhead against the host, and a small pytest suite inside against the "
            "host; print them against the targets (cold open median < 1 s, per-exec overhead "
            "< 150 ms, tests <= 1.3x host time). Missed targets are reported, not fatal: the "
            "exit status is 0 unless no sandbox can be opened here (2) or the harness broke "
            "(1). It removes every orphaned sandbox container first: do not run it beside "
            "tests that use sandboxes."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--opens", type=int, default=20, help="cold opens to time")
    parser.add_argument("--execs", type=int, default=50, help="`true` execs per side")
    parser.add_argument("--runs", type=int, default=5, help="pytest suite runs per side")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed warm-up rounds before each measurement"
    )
    parser.add_argument(
        "--cpus",
        type=float,
        default=float(os.cpu_count() or 1),
        help="the policy's CPU quota (the default is all of this machine's CPUs)",
    )
    parser.add_argument(
        "--host-python",
        help="a host Python with pytest for the host side of the suite (default: the host's "
        "Python of the container's version with the container's own site packages, else a "
        "host Python with pytest, the container's minor version first)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if min(args.opens, args.execs, args.runs) <= 0 or args.warmup < 0 or args.cpus <= 0:
        parser.error("--opens, --execs, --runs and --cpus must be positive, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    policy = SandboxPolicy(cpus=args.cpus, memory_mb=MEMORY_MB, pids=PIDS)
    workdir = Path(tempfile.mkdtemp(prefix="appliance-bench-sandbox-"))
    workdir.chmod(0o711)  # the sandbox user must traverse it to reach the worktrees
    sandbox: PodmanSandbox | None = None
    try:
        try:
            sandbox = PodmanSandbox()
            orphans = sandbox.cleanup_orphans()
            if not sandbox.image_exists(policy.image):
                raise SandboxUnavailable(f"the sandbox image {policy.image} is not built")
        except SandboxUnavailable as exc:
            print(f"sandbox bench: no sandbox here: {exc.message}", file=sys.stderr)
            return 2
        bench = Bench(sandbox, policy, workdir, secrets.token_hex(3))
        try:
            opens = cold_open(bench, args.opens, args.warmup)
            execs = exec_overhead(bench, args.execs, args.warmup)
            suite = pytest_suite(bench, args.runs, args.warmup, args.host_python)
        except Exception as exc:
            print(f"sandbox bench: the harness broke: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        fig = figures(
            args,
            policy,
            orphans=orphans,
            podman=podman_version(),
            enforced=sandbox.enforced_limits(),
            opens=opens,
            execs=execs,
            suite=suite,
            elapsed=time.monotonic() - started,
        )
    finally:
        if sandbox is not None:
            sandbox.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(fig) if args.json else render(fig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
