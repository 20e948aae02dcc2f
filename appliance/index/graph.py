"""The file dependency graph, and the rankings the search draws from it.

An edge ``A → B`` means *A uses something B defines*. Its weight adds up two kinds of
evidence, both computed from the parser's :class:`~appliance.index.types.FileSymbols`:

- **name references**: for every distinct name ``n`` that A references (at least
  ``MIN_NAME_LENGTH`` characters, and not defined in A itself), each file ``B`` defining
  ``n`` gets ``REFERENCE_WEIGHT * sqrt(uses of n in A) / (number of files defining n)``.
  A name defined once (``FileGraph``) is strong evidence; a name defined in twenty files
  (``get``, ``run``) is spread thin over all of them, and one defined in more than
  ``MAX_DEFINERS`` files, or a dunder (``__init__``), draws no edge at all: it says nothing,
  and would cost (referrers times definers) edges. The square root stops one name used a hundred
  times from drowning out the rest.
- **imports** resolved to repository files (:mod:`appliance.index.imports`): each import
  adds ``IMPORT_WEIGHT`` (split evenly when it names several files, as a Go package does).
  An import is explicit, so it weighs more than a name that merely matches.

Every catalogued path is a node, parsed or not, so a README or a ``.json`` file imported by
a script can still be found and ranked.

**Incremental update.** The out-edges of a file are a pure function of its own symbols,
of which files define the names it references, and of the set of paths (for import
resolution). :meth:`FileGraph.update` re-indexes the changed files, then recomputes the
out-edges of exactly the files whose inputs moved: the changed files, the files referencing
a name whose set of definers changed, and — when paths were added or removed — every file
with imports. The result equals a rebuild (the tests check it).

**Rankings.** :meth:`FileGraph.rank` is personalised PageRank (``networkx.pagerank``)
seeded with the files a request names and the files defining identifiers it names; with
no seeds it is plain PageRank, i.e. "how central is this file". It runs on a copy of the
graph with nodes and edges in sorted order, so equal graphs give bit-for-bit equal scores
whatever history built them. :meth:`FileGraph.proximity` is a cheaper, local signal for
the hybrid search: 1.0 for a seed, 0.5 one hop away, 0.25 two hops away, ignoring
direction.

networkx is imported lazily, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from appliance.errors import IndexError_
from appliance.index.imports import ImportResolver
from appliance.index.types import Definition, FileSymbols

if TYPE_CHECKING:
    import networkx as nx  # type: ignore[import-untyped]

REFERENCE_WEIGHT = 1.0
IMPORT_WEIGHT = 3.0
MIN_NAME_LENGTH = 3
MAX_DEFINERS = 32  # a name defined in more files than this is too common to be evidence
DAMPING = 0.85  # PageRank's alpha: the chance of following an edge rather than teleporting

_name = operator.attrgetter("name")


class FileGraph:
    """A directed, weighted file → file graph over one commit of a repository.

    ``symbols`` holds the parsed files; ``paths`` every catalogued path (parsed or not).
    A path in ``symbols`` need not be repeated in ``paths``.
    """

    def __init__(self, symbols: Mapping[str, FileSymbols], paths: Iterable[str] = ()) -> None:
        import networkx as nx

        self._graph: nx.DiGraph = nx.DiGraph()
        self._canonical: nx.DiGraph | None = None
        self._symbols: dict[str, FileSymbols] = {}
        self._paths: set[str] = set()
        # name -> path -> the definitions of that name in that file
        self._definers: dict[str, dict[str, list[Definition]]] = {}
        # name -> path -> how many times that file references it
        self._referrers: dict[str, dict[str, int]] = {}
        # path -> the names it references that can draw an edge, with their counts
        self._uses: dict[str, dict[str, int]] = {}
        # source -> target -> weight: from name references, from imports, and their sum
        self._ref_out: dict[str, dict[str, float]] = {}
        self._import_out: dict[str, dict[str, float]] = {}
        self._out: dict[str, dict[str, float]] = {}
        self._resolver = ImportResolver(())
        self.update(symbols, (), paths=paths)

    # -- building ------------------------------------------------------------------------

    def update(
        self,
        changed: Mapping[str, FileSymbols],
        removed: Iterable[str] = (),
        *,
        paths: Iterable[str] = (),
    ) -> None:
        """Apply one commit's changes: ``changed`` are the parsed files added or modified,
        ``removed`` the deleted paths, ``paths`` new catalogued paths that were not parsed.
        A rename is a removal plus an addition. Leaves the graph equal to a rebuild."""
        for path, fs in changed.items():
            if fs.path != path:
                raise IndexError_(
                    f"FileSymbols for {fs.path!r} was given under the key {path!r}; "
                    "the key must be the file's own path"
                )
        removed = [p for p in dict.fromkeys(removed) if p not in changed]
        touched = [*removed, *changed]
        old_paths = set(self._paths)

        # Names whose set of defining files may change, with that set before the change.
        names = {
            d.name for p in touched if p in self._symbols for d in self._symbols[p].definitions
        }
        names |= {d.name for fs in changed.values() for d in fs.definitions}
        before = {n: set(self._definers.get(n, ())) for n in names}

        for path in touched:
            self._unindex(path)
        for path in removed:
            self._paths.discard(path)
            for table in (self._ref_out, self._import_out, self._out):
                table.pop(path, None)
            if path in self._graph:
                self._graph.remove_node(path)
        for fs in changed.values():
            self._index(fs)
        self._paths.update(paths)
        self._paths.update(changed)
        self._graph.add_nodes_from(sorted(self._paths - set(self._graph)))

        # Whose out-edges moved: see the module docstring.
        ref_dirty = set(changed)
        for name in names:
            if set(self._definers.get(name, ())) != before[name]:
                ref_dirty.update(self._referrers.get(name, ()))
        import_dirty = set(changed)
        if self._paths != old_paths:
            self._resolver = ImportResolver(self._paths)
            import_dirty.update(p for p, fs in self._symbols.items() if fs.imports)
        for source in sorted((ref_dirty | import_dirty) & self._symbols.keys()):
            fs = self._symbols[source]
            if source in ref_dirty:
                self._ref_out[source] = self._reference_edges(fs)
            if source in import_dirty:
                self._import_out[source] = self._import_edges(fs)
            self._set_out_edges(source)
        self._canonical = None

    def _index(self, fs: FileSymbols) -> None:
        self._symbols[fs.path] = fs
        for d in fs.definitions:
            self._definers.setdefault(d.name, {}).setdefault(fs.path, []).append(d)
        counts = Counter(map(_name, fs.references))
        for name, count in counts.items():
            self._referrers.setdefault(name, {})[fs.path] = count
        own = {d.name for d in fs.definitions}
        self._uses[fs.path] = {
            name: count
            for name, count in counts.items()
            if len(name) >= MIN_NAME_LENGTH
            and name not in own
            and not (name.startswith("__") and name.endswith("__"))
        }

    def _unindex(self, path: str) -> None:
        fs = self._symbols.pop(path, None)
        if fs is None:
            return
        del self._uses[path]
        for name in {d.name for d in fs.definitions}:
            files = self._definers[name]
            del files[path]
            if not files:
                del self._definers[name]
        for name in {r.name for r in fs.references}:
            referrers = self._referrers[name]
            del referrers[path]
            if not referrers:
                del self._referrers[name]

    def _reference_edges(self, fs: FileSymbols) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, count in self._uses[fs.path].items():
            definers = self._definers.get(name)
            if not definers or len(definers) > MAX_DEFINERS:
                continue
            weight = REFERENCE_WEIGHT * math.sqrt(count) / len(definers)
            for target in definers:
                out[target] = out.get(target, 0.0) + weight
        return out

    def _import_edges(self, fs: FileSymbols) -> dict[str, float]:
        out: dict[str, float] = {}
        for spec in dict.fromkeys(fs.imports):
            targets = self._resolver.resolve(fs.path, fs.language, spec)
            for target in targets:
                out[target] = out.get(target, 0.0) + IMPORT_WEIGHT / len(targets)
        return out

    def _set_out_edges(self, source: str) -> None:
        edges = dict(self._ref_out.get(source, {}))
        for target, weight in self._import_out.get(source, {}).items():
            edges[target] = edges.get(target, 0.0) + weight
        edges.pop(source, None)
        old = self._out.get(source, {})
        self._graph.remove_edges_from([(source, t) for t in old if t not in edges])
        self._graph.add_weighted_edges_from((source, t, w) for t, w in edges.items())
        self._out[source] = edges

    # -- reading -----------------------------------------------------------------------

    @property
    def graph(self) -> nx.DiGraph:
        """The networkx graph itself (edge attribute ``weight``); read it, don't modify it."""
        return self._graph

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def definitions(self, name: str) -> list[tuple[str, Definition]]:
        """Every definition of ``name`` as ``(path, definition)``, by path then line."""
        files = self._definers.get(name, {})
        return [(path, d) for path in sorted(files) for d in files[path]]

    def references(self, name: str) -> list[str]:
        """The files that reference ``name``, sorted."""
        return sorted(self._referrers.get(name, ()))

    def symbols(self, path: str) -> FileSymbols | None:
        return self._symbols.get(path)

    # -- rankings ----------------------------------------------------------------------

    def rank(
        self, seeds: Mapping[str, float] | None = None, *, seed_names: Iterable[str] = ()
    ) -> dict[str, float]:
        """PageRank of every file, best first (ties by path); the scores sum to 1.

        ``seeds`` maps files the request names to a weight; each name in ``seed_names``
        adds 1 shared among the files defining it. The random walk restarts at the seeds
        (personalised PageRank), so the seeds and the files around them rank high. Unknown
        paths and names are ignored; with no seed left this is plain PageRank.
        """
        import networkx as nx

        graph = self._canonical_graph()
        if not graph:
            return {}
        personalization: dict[str, float] = {}
        for path, weight in (seeds or {}).items():
            if path in self._paths and weight > 0:
                personalization[path] = personalization.get(path, 0.0) + weight
        for name in dict.fromkeys(seed_names):
            definers = self._definers.get(name, {})
            for path in definers:
                personalization[path] = personalization.get(path, 0.0) + 1 / len(definers)
        try:
            scores: dict[str, float] = nx.pagerank(
                graph,
                alpha=DAMPING,
                personalization=personalization or None,
                weight="weight",
                max_iter=200,
            )
        except nx.PowerIterationFailedConvergence as exc:
            raise IndexError_(f"PageRank did not converge over {len(graph)} files") from exc
        return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0])))

    def proximity(self, seeds: Iterable[str], max_depth: int = 2) -> dict[str, float]:
        """Files within ``max_depth`` hops of a seed, edges taken in either direction:
        ``0.5 ** hops`` (1.0 for a seed itself), nearest first, ties by path."""
        import networkx as nx

        sources = sorted({s for s in seeds if s in self._paths})
        if not sources:
            return {}
        out: dict[str, float] = {}
        undirected = self._graph.to_undirected(as_view=True)
        for depth, layer in enumerate(nx.bfs_layers(undirected, sources)):
            if depth > max_depth:
                break
            for path in sorted(layer):
                out[path] = 0.5**depth
        return out

    def warm(self) -> None:
        """Build what the first :meth:`rank` would (after an update, off the query path)."""
        self._canonical_graph()

    def _canonical_graph(self) -> nx.DiGraph:
        """A copy with nodes and edges in sorted order (cached until the next update)."""
        if self._canonical is None:
            import networkx as nx

            canonical = nx.DiGraph()
            canonical.add_nodes_from(sorted(self._paths))
            canonical.add_weighted_edges_from(
                (source, target, edges[target])
                for source, edges in sorted(self._out.items())
                for target in sorted(edges)
            )
            self._canonical = canonical
        return self._canonical
