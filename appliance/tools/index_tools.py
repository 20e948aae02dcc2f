"""The agent's tools that read the repository index: symbols, references, search, repo map.

They answer from the index of the task's base commit (``ToolContext.index``); the worktree
may have moved on since (the agent's own edits), which ``file_summary`` notes when the file
changed. Paths given by the model go through :func:`appliance.tools.paths.resolve_inside`
like every other tool's, so the same refusals apply.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from appliance.errors import IndexError_
from appliance.index.indexer import RepoIndex
from appliance.index.repomap import render_repo_map
from appliance.index.search import search
from appliance.tools.paths import relative, resolve_inside
from appliance.tools.registry import Tool, ToolContext


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _index(ctx: ToolContext) -> RepoIndex:
    index = ctx.index
    if index is None:
        raise IndexError_(
            "this repository has no index yet; use search_code and list_directory instead"
        )
    return index


class FileSummaryArgs(_Args):
    path: str = Field(description="File path relative to the repository root.")


def file_summary(ctx: ToolContext, args: FileSummaryArgs) -> str:
    index = _index(ctx)
    target = resolve_inside(ctx.worktree, args.path, allow_dir=False)
    path = relative(ctx.worktree, target)
    symbols = index.symbols_of(path)
    if symbols is None:
        return f"{path}: no symbols indexed (not a parsed source file, or new since indexing)"
    lines = [f"{path} ({symbols.language})"]
    if symbols.imports:
        lines.append("imports: " + ", ".join(symbols.imports[:40]))
    for d in symbols.definitions:
        indent = "  " if d.parent else ""
        doc = f"  — {d.docstring.splitlines()[0][:100]}" if d.docstring else ""
        lines.append(f"{indent}{d.line_start}-{d.line_end} {d.kind} {d.signature}{doc}")
    indexed = index.text(path)
    if indexed is not None and indexed != target.read_text(encoding="utf-8", errors="replace"):
        lines.append("(the file changed since it was indexed: line numbers may be off)")
    return "\n".join(lines)


class NameArgs(_Args):
    name: str = Field(min_length=1, max_length=200, description="Identifier, e.g. parse_config.")


def find_definitions(ctx: ToolContext, args: NameArgs) -> str:
    found = _index(ctx).definitions(args.name)
    if not found:
        return f"no definition of {args.name!r} in the index; try search_code"
    return "\n".join(
        f"{path}:{d.line_start}-{d.line_end} {d.kind} {d.signature}" for path, d in found[:50]
    )


def find_references(ctx: ToolContext, args: NameArgs) -> str:
    index = _index(ctx)
    paths = index.references(args.name)
    if not paths:
        return f"no file references {args.name!r} in the index; try search_code"
    out = []
    for path in paths[:100]:
        symbols = index.symbols_of(path)
        lines = (
            sorted({r.line for r in symbols.references if r.name == args.name}) if symbols else []
        )
        out.append(f"{path}: line(s) {', '.join(map(str, lines[:20]))}" if lines else path)
    return "\n".join(out)


class SemanticSearchArgs(_Args):
    query: str = Field(min_length=1, max_length=4000, description="What to look for.")
    k: int = Field(10, ge=1, le=50, description="How many results.")


def semantic_search(ctx: ToolContext, args: SemanticSearchArgs) -> str:
    hits = search(_index(ctx), args.query, args.k)
    if not hits:
        return "nothing matched; rephrase with identifiers or file names"
    out = []
    for h in hits:
        where = f"{h.path}:{h.line_start}-{h.line_end}" if h.line_start else h.path
        symbol = f" ({h.symbol})" if h.symbol else ""
        out.append(f"{where}{symbol}  [{', '.join(h.reasons[:3])}]")
    return "\n".join(out)


class RepoMapArgs(_Args):
    focus: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Files or identifiers to centre the map on.",
    )
    token_budget: int = Field(2000, ge=200, le=16000, description="Size of the map, tokens.")


def repo_map(ctx: ToolContext, args: RepoMapArgs) -> str:
    index = _index(ctx)
    paths = set(index.paths())
    seeds = {f: 1.0 for f in args.focus if f in paths}
    names = [f for f in args.focus if f not in paths]
    ranked = index.graph.rank(seeds, seed_names=names)
    symbols = {p: s for p in ranked if (s := index.symbols_of(p)) is not None}
    return (
        render_repo_map(ranked, symbols, token_budget=args.token_budget, focus_names=names)
        or "(empty repository map)"
    )


INDEX_TOOLS: list[Tool[BaseModel]] = [
    Tool(
        "file_summary",
        "A file's imports and definitions (kind, lines, signature, first docstring line).",
        FileSummaryArgs,
        file_summary,  # type: ignore[arg-type]
    ),
    Tool(
        "find_definitions",
        "Where a function, class, method or constant is defined.",
        NameArgs,
        find_definitions,  # type: ignore[arg-type]
    ),
    Tool(
        "find_references",
        "Files (and lines) that use a name.",
        NameArgs,
        find_references,  # type: ignore[arg-type]
    ),
    Tool(
        "semantic_search",
        "Search the repository by meaning and keywords; returns files with line spans.",
        SemanticSearchArgs,
        semantic_search,  # type: ignore[arg-type]
    ),
    Tool(
        "repo_map",
        "An overview of the most relevant files and their key symbols, within a token budget.",
        RepoMapArgs,
        repo_map,  # type: ignore[arg-type]
        more_hint="ask for a smaller token_budget or more focus",
    ),
]
