"""What a request names: file paths, identifiers and stack-trace frames.

A developer writes "fix the crash in ``parse_config`` when ``settings.toml`` is empty" or
pastes a traceback. The search boosts what is named: paths (matched to catalogued files by
suffix, so ``config/loader.py`` finds ``src/app/config/loader.py``), identifiers that look
like code (``snake_case``, ``camelCase``, ``PascalCase``, ``dotted.names``, ``call()``), and
the frames of a Python, JavaScript/TypeScript, Java or Go stack trace — the innermost frames
of the repository's own files first, since that is where a bug usually is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_SOURCE_EXT = r"(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|mts|go|java|kt|rb|rs|c|h|cc|cpp|hpp|cs|php)"
_PY_FRAME = re.compile(r'File "([^"]+)", line (\d+)(?:, in ([\w<>.]+))?')
_JS_FRAME = re.compile(
    r"at (?:(?:async )?([\w$.<>\[\] ]+?) \()?(?:file://)?([^\s()]+?\." + _SOURCE_EXT + r"):(\d+)"
)
_JAVA_FRAME = re.compile(r"at ([\w$.]+)\.([\w$<>]+)\(([\w$]+\.(?:java|kt)):(\d+)\)")
_GO_FRAME = re.compile(r"^\s*(\S+\.go):(\d+)", re.MULTILINE)
_PATH = re.compile(
    r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\." + _SOURCE_EXT + r"|(?:[\w.-]+/)+[\w.-]+)\b"
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CODE_LIKE = re.compile(r"_|[a-z][A-Z]|^[A-Z][a-z]+[A-Z]")
_BACKTICKED = re.compile(r"`([^`\n]{1,120})`")


@dataclass(frozen=True)
class Frame:
    path: str
    line: int
    function: str | None = None


@dataclass
class QueryInfo:
    text: str
    paths: list[str] = field(default_factory=list)  # as written in the request
    identifiers: list[str] = field(default_factory=list)  # code-like names, most specific first
    frames: list[Frame] = field(default_factory=list)  # innermost (most recent call) first


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def parse_frames(text: str) -> list[Frame]:
    """Stack-trace frames, innermost first (Python prints outermost first; the others don't)."""
    python = [Frame(p, int(n), f) for p, n, f in _PY_FRAME.findall(text)]
    python.reverse()
    java = [
        Frame(cls.replace(".", "/").rsplit("/", 1)[0] + "/" + file, int(n), method)
        for cls, method, file, n in _JAVA_FRAME.findall(text)
    ]
    js = [
        Frame(p, int(n), (f or "").strip() or None)
        for f, p, n in _JS_FRAME.findall(text)
        if not p.endswith((".java", ".kt"))
    ]
    go = [Frame(p, int(n)) for p, n in _GO_FRAME.findall(text)] if not python else []
    return python + java + js + go


def analyse(text: str) -> QueryInfo:
    frames = parse_frames(text)
    paths = _dedupe([f.path for f in frames] + _PATH.findall(text))
    names: list[str] = []
    for frame in frames:
        if frame.function:
            names.extend(frame.function.replace("<", " ").replace(">", " ").split(".")[-1:])
    for quoted in _BACKTICKED.findall(text):
        names.extend(_IDENT.findall(quoted))
    for token in _IDENT.findall(text):
        last = token.rsplit(".", 1)[-1]
        if _CODE_LIKE.search(last) or ("." in token and not _looks_like_path(token, paths)):
            names.append(last)
            if "." in token:
                names.append(token)
    idents = [n for n in _dedupe(n.strip() for n in names) if len(n) >= 3 and n != "module"]
    return QueryInfo(text=text, paths=paths, identifiers=idents, frames=frames)


def _looks_like_path(token: str, paths: list[str]) -> bool:
    return any(token in p for p in paths) or bool(re.search(r"\." + _SOURCE_EXT + "$", token))


def match_paths(named: Iterable[str], catalog: Iterable[str]) -> dict[str, str]:
    """Catalogued path for each named path (exact, else the shortest suffix match)."""
    files = list(catalog)
    found: dict[str, str] = {}
    for name in named:
        clean = name.replace("\\", "/").lstrip("./")
        if not clean:
            continue
        exact = [f for f in files if f == clean]
        if exact:
            found[name] = exact[0]
            continue
        parts = clean.split("/")
        # the longest tail of the named path that some file ends with; two components at
        # least when there are two, so /usr/lib/…/requests/models.py never matches models.py
        last_start = 0 if len(parts) == 1 else len(parts) - 2
        for start in range(last_start + 1):
            tail = "/".join(parts[start:])
            hits = [f for f in files if f == tail or f.endswith("/" + tail)]
            if hits:
                found[name] = min(hits, key=len)
                break
    return found
