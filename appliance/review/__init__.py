"""Review of an agent's diff before a human sees it: secret scan and diff statistics.

    findings = scan_diff(diff_text, allow=settings_allow_list)
    if is_blocking(findings):        # any critical finding
        ...                          # abort, quarantine the worktree, alert with summarize()

See :mod:`appliance.review.secrets` for the rules and :mod:`appliance.review.findings` for the
severity mapping.
"""

from __future__ import annotations

from appliance.review.diffs import FileStat, diff_stats
from appliance.review.errors import DiffUnreadable, ReviewError
from appliance.review.findings import RULE_SEVERITY, Finding, Severity, is_blocking, summarize
from appliance.review.secrets import scan_diff, scan_text

__all__ = [
    "RULE_SEVERITY",
    "DiffUnreadable",
    "FileStat",
    "Finding",
    "ReviewError",
    "Severity",
    "diff_stats",
    "is_blocking",
    "scan_diff",
    "scan_text",
    "summarize",
]
