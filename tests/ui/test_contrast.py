"""Readable contrast (WCAG AA, 4.5:1 for text) of the +/- counts and problem texts, which
sit on the light page as well as in the dark terminal."""

from __future__ import annotations

import re

import pytest

from ui.render import ASSETS, STATIC

CSS = (STATIC / ASSETS["css"]).read_text()


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _variables(block: str) -> dict[str, str]:
    return dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})", block))


LIGHT = _variables(CSS.split("@media (prefers-color-scheme: dark)")[0])
DARK = {**LIGHT, **_variables(CSS.split("@media (prefers-color-scheme: dark)")[1].split("}")[0])}


def _colour(selector: str, variables: dict[str, str]) -> str:
    """The colour a rule outside the terminal gives ``selector`` (resolving var())."""
    found = re.search(re.escape(selector) + r"\s*\{\s*color:\s*([^;]+);", CSS)
    assert found, f"no colour for {selector}"
    value = found.group(1).strip()
    if value.startswith("var("):
        return variables[value[4:-1]]
    return value


def test_contrast_formula_matches_known_pairs() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#56d364", "#ffffff") < 2.0  # the terminal green that was used on white


@pytest.mark.parametrize("selector", [".t-ok", ".t-bad"])
@pytest.mark.parametrize("background", ["--bg", "--panel", "--add-bg", "--del-bg"])
def test_counts_are_readable_in_light_mode(selector: str, background: str) -> None:
    assert contrast(_colour(selector, LIGHT), LIGHT[background]) >= 4.5


@pytest.mark.parametrize("selector", [".t-ok", ".t-bad"])
def test_counts_are_readable_in_dark_mode_and_the_terminal(selector: str) -> None:
    assert contrast(_colour(selector, DARK), DARK["--bg"]) >= 4.5
    assert contrast(_colour(selector, DARK), DARK["--panel"]) >= 4.5
    terminal = _colour(".term " + selector, DARK)
    assert contrast(terminal, DARK["--term-bg"]) >= 4.5
    assert contrast(terminal, LIGHT["--term-bg"]) >= 4.5
