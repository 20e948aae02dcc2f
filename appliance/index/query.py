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
_JAVA_FRAME = re.compile(
    r"at (?:[\w.-]+(?:@[\w.-]+)?/)?([\w$.]+)\.([\w$<>]+)\(([\w$]+\.(?:java|kt)):(\d+)\)"
)
_GO_FRAME = re.compile(r"^[ \t]*(\S+\.go):(\d+)", re.MULTILINE)
_GO_CLOSURE = re.compile(r"^(?:func|gowrap)\d+$")
# Frames of code the repository does not own: interpreters' and runtimes' own files and
# installed dependencies. They rank after the repository's frames.
_LIBRARY = re.compile(
    r"(?:^|/)(?:site-packages|dist-packages|node_modules|pkg/mod)/|/lib/python\d"
    r"|^/usr/(?:local/)?(?:lib|lib64|go)/|^(?:node:|<)|^internal/[\w/]+\.js$"
    r"|^(?:java|javax|jdk|sun|kotlin)/"
)
_PATH = re.compile(
    r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\." + _SOURCE_EXT + r"|(?:[\w.-]+/)+[\w.-]+)\b"
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CODE_LIKE = re.compile(r"_|[a-z][A-Z]|^[A-Z][a-z]+[A-Z]")
_BACKTICKED = re.compile(r"`([^`\n]{1,120})`")


@dataclass(frozen=True)
class Frame:
    path: str  # as the trace prints it (Java: the package path and file name)
    line: int
    function: str | None = None

    @property
    def library(self) -> bool:
        """True when the frame is in an installed package or the runtime, not in a project."""
        return bool(_LIBRARY.search(self.path))


@dataclass
class QueryInfo:
    text: str
    # as written in the request: the repository's frames (innermost first), other paths,
    # then library frames
    paths: list[str] = field(default_factory=list)
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
        Frame(_java_path(cls, file), int(n), method)
        for cls, method, file, n in _JAVA_FRAME.findall(text)
    ]
    js = [
        Frame(p, int(n), (f or "").strip() or None)
        for f, p, n in _JS_FRAME.findall(text)
        if not p.endswith((".java", ".kt"))
    ]
    go = [] if python else _go_frames(text)
    return python + java + js + go


def _java_path(cls: str, file: str) -> str:
    """``com.shop.Order$Line`` + ``Order.java`` → ``com/shop/Order.java``."""
    package, _, _name = cls.rpartition(".")
    return f"{package.replace('.', '/')}/{file}" if package else file


def _go_frames(text: str) -> list[Frame]:
    """Goroutine frames: a ``pkg.(*Type).Method(args)`` line, then ``\t/path/file.go:12 +0x1d``."""
    frames = []
    for match in _GO_FRAME.finditer(text):
        above = text[: match.start()].rstrip("\n").rpartition("\n")[2].strip()
        above = above.removeprefix("created by ").split(" in goroutine ")[0]
        call = above.rpartition("(")[0] if above.endswith(")") else above
        parts = [p for p in call.split(".") if p and not _GO_CLOSURE.match(p)]
        name = parts[-1] if parts and re.fullmatch(r"[A-Za-z_]\w*", parts[-1]) else None
        frames.append(Frame(match.group(1), int(match.group(2)), name))
    return frames


def _frame_name(function: str | None) -> str | None:
    """The identifier a frame's function is called by (``Object.<anonymous>`` → None)."""
    if not function:
        return None
    last = function.split()[-1].split(".")[-1] if function.split() else ""
    return last if re.fullmatch(r"[A-Za-z_$][\w$]*", last) else None


def analyse(text: str) -> QueryInfo:
    frames = parse_frames(text)
    own = [f for f in frames if not f.library]
    library = [f for f in frames if f.library]
    library_paths = {f.path for f in library}
    written = [p for p in _PATH.findall(text) if p not in library_paths]
    paths = _dedupe([f.path for f in own] + written + [f.path for f in library])
    names: list[str] = [n for f in own + library if (n := _frame_name(f.function))]
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


def strip_dot_slash(path: str) -> str:
    """``path`` without leading ``./`` prefixes and slashes; a dotfile or dot-directory
    (``.github/workflows/ci.yml``) keeps its dot, and ``../`` is left alone."""
    while path.startswith(("./", "/")):
        path = path.removeprefix("./").lstrip("/")
    return path


def match_paths(named: Iterable[str], catalog: Iterable[str]) -> dict[str, str]:
    """Catalogued path for each named path (exact, else the shortest suffix match)."""
    files = list(catalog)
    found: dict[str, str] = {}
    for name in named:
        clean = strip_dot_slash(name.replace("\\", "/"))
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
