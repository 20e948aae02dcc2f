"""What a request names: stack-trace frames, identifiers and paths matched to the catalog."""

from __future__ import annotations

from appliance.index.query import Frame, analyse, match_paths, parse_frames, strip_dot_slash
from tests.index.shop_repo import TRACEBACK

PYTHON_WITH_LIBRARY = """Traceback (most recent call last):
  File "/home/dev/shop/shop/cli.py", line 9, in main
    order = place_order(argv[0], [])
  File "/home/dev/shop/shop/orders.py", line 16, in place_order
    total = float(apply_discount(total, discount))
  File "/home/dev/.venv/lib/python3.12/site-packages/money/core.py", line 40, in convert
    return Decimal(value)
  File "/usr/lib/python3.12/_pydecimal.py", line 590, in __new__
    raise TypeError("conversion from %s to Decimal is not supported")
TypeError: conversion from NoneType to Decimal is not supported
"""

NODE = """TypeError: Cannot read properties of undefined (reading 'toFixed')
    at formatPrice (/srv/app/web/static/format.js:3:22)
    at Array.map (<anonymous>)
    at Object.<anonymous> (/srv/app/web/main.js:12:3)
    at new Cart (/srv/app/node_modules/cart-kit/lib/cart.js:7:9)
    at async renderCart (file:///srv/app/web/static/cart.js:5:16)
    at Module._compile (node:internal/modules/cjs/loader:1105:14)
"""

JAVA = """Exception in thread "main" java.lang.ArithmeticException: / by zero
\tat com.shop.orders.OrderService.computeTotal(OrderService.java:42)
\tat com.shop.orders.OrderService$Line.<init>(OrderService.java:80)
\tat Main.main(Main.java:3)
\tat java.base/java.lang.Thread.run(Thread.java:833)
"""

GO = """panic: runtime error: integer divide by zero

goroutine 1 [running]:
main.computeTotal(...)
\t/home/dev/shop/invoices/total.go:12 +0x1d
github.com/acme/shop/invoices.(*Invoice).Render(0xc000010000, {0x0, 0x0})
\t/home/dev/shop/invoices/invoice.go:13 +0x25
main.main.func1()
\t/home/dev/shop/main.go:8 +0x25
created by main.main in goroutine 1
\t/home/dev/shop/main.go:20 +0x30
exit status 2
"""


def test_python_frames_are_read_innermost_first() -> None:
    assert parse_frames(TRACEBACK) == [
        Frame("/srv/shop/shop/orders.py", 9, "compute_total"),
        Frame("/srv/shop/shop/orders.py", 14, "place_order"),
        Frame("/srv/shop/shop/cli.py", 9, "main"),
    ]
    info = analyse(TRACEBACK)
    assert info.paths == ["/srv/shop/shop/orders.py", "/srv/shop/shop/cli.py"]
    assert info.identifiers[:3] == ["compute_total", "place_order", "main"]
    assert "ZeroDivisionError" in info.identifiers


def test_library_frames_rank_after_the_repositorys_own() -> None:
    frames = parse_frames(PYTHON_WITH_LIBRARY)
    assert [(f.function, f.library) for f in frames] == [
        ("__new__", True),
        ("convert", True),
        ("place_order", False),
        ("main", False),
    ]
    info = analyse(PYTHON_WITH_LIBRARY)
    assert info.paths == [
        "/home/dev/shop/shop/orders.py",
        "/home/dev/shop/shop/cli.py",
        "/usr/lib/python3.12/_pydecimal.py",
        "/home/dev/.venv/lib/python3.12/site-packages/money/core.py",
    ]
    assert info.identifiers[:2] == ["place_order", "main"]


def test_node_frames_with_and_without_a_function_name() -> None:
    assert parse_frames(NODE) == [
        Frame("/srv/app/web/static/format.js", 3, "formatPrice"),
        Frame("/srv/app/web/main.js", 12, "Object.<anonymous>"),
        Frame("/srv/app/node_modules/cart-kit/lib/cart.js", 7, "new Cart"),
        Frame("/srv/app/web/static/cart.js", 5, "renderCart"),
    ]
    info = analyse(NODE)
    assert info.paths[:3] == [
        "/srv/app/web/static/format.js",
        "/srv/app/web/main.js",
        "/srv/app/web/static/cart.js",
    ]
    assert info.paths[-1] == "/srv/app/node_modules/cart-kit/lib/cart.js"
    assert info.identifiers[:3] == ["formatPrice", "renderCart", "Cart"]
    assert "anonymous" not in info.identifiers


def test_java_frames_map_classes_to_package_paths() -> None:
    frames = parse_frames(JAVA)
    assert frames == [
        Frame("com/shop/orders/OrderService.java", 42, "computeTotal"),
        Frame("com/shop/orders/OrderService.java", 80, "<init>"),
        Frame("Main.java", 3, "main"),
        Frame("java/lang/Thread.java", 833, "run"),
    ]
    assert [f.library for f in frames] == [False, False, False, True]
    info = analyse(JAVA)
    assert info.paths[:2] == ["com/shop/orders/OrderService.java", "Main.java"]
    assert info.identifiers[:3] == ["computeTotal", "main", "run"]
    assert "<init>" not in info.identifiers


def test_goroutine_frames_take_the_function_from_the_line_above() -> None:
    assert parse_frames(GO) == [
        Frame("/home/dev/shop/invoices/total.go", 12, "computeTotal"),
        Frame("/home/dev/shop/invoices/invoice.go", 13, "Render"),
        Frame("/home/dev/shop/main.go", 8, "main"),
        Frame("/home/dev/shop/main.go", 20, "main"),
    ]
    info = analyse(GO)
    assert info.identifiers[:3] == ["computeTotal", "Render", "main"]
    assert info.paths[:3] == [
        "/home/dev/shop/invoices/total.go",
        "/home/dev/shop/invoices/invoice.go",
        "/home/dev/shop/main.go",
    ]


def test_identifiers_and_paths_written_in_prose() -> None:
    info = analyse(
        "fix the crash in `parse_config` when settings.toml is empty; "
        "UserSettings.load and orderTotal() in src/app/config/loader.py, "
        "see .github/workflows/ci.yml"
    )
    assert info.frames == []
    assert info.identifiers[0] == "parse_config"  # quoted as code: the most specific
    assert {"UserSettings.load", "load", "orderTotal"} <= set(info.identifiers)
    assert info.paths == ["src/app/config/loader.py", ".github/workflows/ci.yml"]
    assert analyse("the page is slow when nothing is cached").identifiers == []


CATALOG = [
    ".github/workflows/ci.yml",
    "github/workflows/ci.yml",
    "src/app/config/loader.py",
    "tests/config/loader.py",
    "models.py",
    "requests/models.py",
    "vendor/requests/models.py",
]


def test_match_paths_keeps_the_dot_of_dotfiles() -> None:
    assert match_paths([".github/workflows/ci.yml"], CATALOG) == {
        ".github/workflows/ci.yml": ".github/workflows/ci.yml"
    }
    assert match_paths(["././.github/workflows/ci.yml"], CATALOG) == {
        "././.github/workflows/ci.yml": ".github/workflows/ci.yml"
    }
    assert match_paths(["./github/workflows/ci.yml"], CATALOG) == {
        "./github/workflows/ci.yml": "github/workflows/ci.yml"
    }
    assert strip_dot_slash("./.env") == ".env"
    assert strip_dot_slash("../x.py") == "../x.py"


def test_match_paths_by_suffix_and_never_by_file_name_alone() -> None:
    found = match_paths(
        [
            "/srv/app/src/app/config/loader.py",
            "config/loader.py",
            "/usr/lib/python3/site-packages/requests/models.py",
            "/usr/lib/python3/site-packages/urllib3/models.py",
            "models.py",
            "nothing/here.py",
        ],
        CATALOG,
    )
    assert found == {
        "/srv/app/src/app/config/loader.py": "src/app/config/loader.py",
        "config/loader.py": "tests/config/loader.py",  # the shortest of the suffix matches
        "/usr/lib/python3/site-packages/requests/models.py": "requests/models.py",
        "models.py": "models.py",
    }
