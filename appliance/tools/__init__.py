"""The agent's tools: small functions with JSON-schema'd arguments, every path resolved
inside the task's worktree."""
