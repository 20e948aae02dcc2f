"""Git layer: bare mirrors of registered repositories and one worktree per task, with git
configured so that nothing in an untrusted repository runs (hooks, filters, submodules).

* ``git``: :func:`run_git`, the one way git is started (argv only, environment built from
  scratch, hardening ``-c`` settings, credentials in the environment, timeouts that kill
  the process group, errors with secrets masked).
* ``mirror``: :class:`Mirrors` (clone ``--mirror`` once, ``fetch --prune`` after) and
  :class:`GitRepo`, the index's ``RepoReader`` over a bare mirror.
* ``worktree``: :class:`Worktrees`, a checkout per task on a new branch, with
  ``commit_all`` and ``diff`` for the pipeline; a checkout is treated as untrusted once
  the sandbox has run (its ``.git`` file is never read again).
"""

from appliance.repos.git import Credentials, run_git
from appliance.repos.mirror import FetchAccess, GitRepo, Mirrors
from appliance.repos.worktree import Worktree, Worktrees

__all__ = ["Credentials", "FetchAccess", "GitRepo", "Mirrors", "Worktree", "Worktrees", "run_git"]
