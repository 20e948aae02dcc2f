"""chunk_file on real files: full coverage, no overlap, definitions kept whole."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from appliance.errors import InvalidInput
from appliance.index.chunks import chunk_file
from appliance.index.parse import parse_file
from appliance.index.types import Chunk

DESIGN_MD = Path(__file__).resolve().parents[2] / "README.md"


def line_count(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def assert_tiles(chunks: list[Chunk], text: str, max_lines: int = 80) -> None:
    """Every line in exactly one chunk, in order, and each chunk's text is its lines."""
    lines = text.split("\n")
    expected = 1
    for chunk in chunks:
        assert chunk.line_start == expected, f"gap or overlap before {chunk.id}"
        assert chunk.line_end - chunk.line_start + 1 <= max_lines, chunk.id
        assert chunk.text == "\n".join(lines[chunk.line_start - 1 : chunk.line_end])
        expected = chunk.line_end + 1
    assert expected == line_count(text) + 1


@pytest.mark.parametrize("module", [argparse, json.decoder])
def test_a_real_python_module_is_tiled_along_its_definitions(module: object) -> None:
    path = Path(module.__file__)  # type: ignore[attr-defined]
    source = path.read_bytes()
    text = source.decode()
    symbols = parse_file(path.name, "python", source)

    chunks = chunk_file(path.name, text, symbols)

    assert_tiles(chunks, text)
    for definition in symbols.definitions:  # what fits in a chunk is never cut
        if definition.line_end - definition.line_start + 1 <= 80:
            assert any(
                c.line_start <= definition.line_start and definition.line_end <= c.line_end
                for c in chunks
            ), definition
    sizes = [c.line_end - c.line_start + 1 for c in chunks]
    assert sum(s >= 40 for s in sizes) >= 0.8 * len(sizes)  # small neighbours were merged


def test_a_big_class_is_split_at_its_methods() -> None:
    source = Path(argparse.__file__).read_bytes()
    symbols = parse_file("argparse.py", "python", source)

    chunks = chunk_file("argparse.py", source.decode(), symbols)

    parser_class = next(d for d in symbols.definitions if d.name == "ArgumentParser")
    assert parser_class.line_end - parser_class.line_start > 80
    starts = {c.line_start for c in chunks}
    methods = [d for d in symbols.definitions if d.parent == "ArgumentParser"]
    inside = [c for c in chunks if parser_class.line_start <= c.line_start <= parser_class.line_end]
    assert len(inside) > 1
    method_starts = {m.line_start for m in methods} | {parser_class.line_start}
    lines = source.decode().split("\n")
    for start in starts & {c.line_start for c in inside}:
        # a cut inside the class lands on a method (or the comment above one)
        first = lines[start - 1].strip()
        assert start in method_starts or first.startswith("#") or not first, start
    assert any(c.symbol and c.symbol.startswith("ArgumentParser.") for c in inside)


def test_a_class_that_fits_is_one_chunk_named_after_it() -> None:
    source = (
        b"import os\n\n\nclass Small:\n    def a(self):\n        return 1\n\n"
        b"    def b(self):\n        return 2\n"
    )

    chunks = chunk_file("small.py", source.decode(), parse_file("small.py", "python", source))

    assert [(c.line_start, c.line_end, c.symbol) for c in chunks] == [(1, 9, "Small")]


def test_a_long_function_alone_is_windowed_with_its_name() -> None:
    body = "".join(f"    x{i} = compute({i})\n" + ("\n" if i % 7 == 6 else "") for i in range(200))
    text = "def long_one():\n" + body + "\n\ndef after():\n    return 1\n"
    symbols = parse_file("long.py", "python", text.encode())

    chunks = chunk_file("long.py", text, symbols)

    assert_tiles(chunks, text)
    assert len(chunks) >= 3
    assert all(c.symbol == "long_one" for c in chunks[:-1])
    assert all(c.line_end - c.line_start + 1 >= 40 for c in chunks)
    blank_cut = [c for c in chunks[:-1] if not text.split("\n")[c.line_end - 1].strip()]
    assert len(blank_cut) >= 2  # windows end at blank lines where they can


def test_markdown_is_cut_at_blank_lines_before_headings() -> None:
    text = DESIGN_MD.read_text()
    sections = "".join(
        f"## Section {n}\n\n" + "".join(f"Line {n}.{i} of prose.\n" for i in range(25)) + "\n"
        for n in range(8)
    )
    long_text = text + "\n" + sections

    chunks = chunk_file("README.md", long_text, None)

    assert_tiles(chunks, long_text)
    assert all(c.symbol is None for c in chunks)
    lines = long_text.split("\n")
    for chunk in chunks[1:]:
        assert (
            lines[chunk.line_start - 1].startswith("#") or not lines[chunk.line_start - 2].strip()
        )


def test_go_methods_outside_their_struct_are_top_level_pieces() -> None:
    funcs = "".join(
        f"// M{i} does {i}.\nfunc (s *S) M{i}() int {{\n" + "\tx := 1\n" * 42 + "\treturn x\n}\n\n"
        for i in range(4)
    )
    text = "package p\n\ntype S struct{}\n\n" + funcs
    symbols = parse_file("s.go", "go", text.encode())

    chunks = chunk_file("s.go", text, symbols)

    assert_tiles(chunks, text)
    assert [c.symbol for c in chunks] == ["S.M0", "S.M1", "S.M2", "S.M3"]
    assert chunks[1].text.startswith("// M1 does 1.")  # the doc comment stays with its method


def test_short_text_is_one_chunk_and_empty_text_none() -> None:
    assert chunk_file("a.txt", "", None) == []
    chunks = chunk_file("a.txt", "one\ntwo\n", None)
    assert [(c.line_start, c.line_end, c.text) for c in chunks] == [(1, 2, "one\ntwo")]
    assert chunks[0].id == "a.txt:1-2"


def test_inconsistent_sizes_are_refused() -> None:
    with pytest.raises(InvalidInput, match="min_lines <= target_lines <= max_lines"):
        chunk_file("a.txt", "x\n", None, target_lines=100, max_lines=80)
