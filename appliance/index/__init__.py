"""Repository index: file catalog, tree-sitter symbols, dependency graph, repo map, BM25 and
embeddings in Chroma, hybrid search. See :mod:`appliance.index.types` for the stages."""
