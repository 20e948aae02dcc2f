"""Git layer: bare mirrors of registered repositories and one worktree per task, with git
configured so that nothing in an untrusted repository runs (hooks, filters, submodules)."""
