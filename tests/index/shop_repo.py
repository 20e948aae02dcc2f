"""A small realistic multi-language repository for the index tests, built with real git.

Its history has a real rename (``git mv shop/main.py shop/cli.py``) and its tree a symlink
to ``/etc`` and a ``.gitattributes`` that gives Python files a filter and a diff driver.
:func:`arm_traps` configures those drivers and installs hooks in a git directory (each
writes a marker file when run), so a test can show that indexing never runs any of them.
"""

from __future__ import annotations

from pathlib import Path

from tests.gitrepos import (
    FileContent,
    Upstream,
    hook_script,
    make_executable,
    make_upstream,
    plain_git,
)

GITATTRIBUTES = "*.py filter=shopmark diff=shopmark\n*.png binary\n"

FILES: dict[str, FileContent] = {
    "README.md": "# Shop\n\nOrders, pricing and invoices for the web shop.\n",
    ".gitattributes": GITATTRIBUTES,
    "shop/__init__.py": "",
    "shop/pricing.py": '''"""Prices, discounts and taxes."""

from decimal import Decimal

VAT_RATE = Decimal("0.20")


def apply_discount(amount: Decimal, percent: int) -> Decimal:
    """Reduce ``amount`` by ``percent`` per cent."""
    return amount * (100 - percent) / 100


def with_vat(amount: Decimal) -> Decimal:
    return amount * (1 + VAT_RATE)
''',
    "shop/orders.py": '''"""Placing orders."""

from shop.pricing import apply_discount, with_vat
from shop.models import Order, LineItem


def compute_total(items: list[LineItem]) -> float:
    """The order total: the mean item price times the count, with VAT."""
    average = sum(i.price for i in items) / len(items)
    return float(with_vat(average * len(items)))


def place_order(customer: str, items: list[LineItem], discount: int = 0) -> Order:
    total = compute_total(items)
    if discount:
        total = float(apply_discount(total, discount))
    return Order(customer=customer, items=items, total=total)
''',
    "shop/models.py": '''"""The shop's records."""

from dataclasses import dataclass, field


@dataclass
class LineItem:
    sku: str
    price: float
    quantity: int = 1


@dataclass
class Order:
    customer: str
    items: list[LineItem] = field(default_factory=list)
    total: float = 0.0
''',
    "shop/cli.py": '''"""Command line entry point."""

import sys

from shop.orders import place_order


def main(argv: list[str]) -> int:
    order = place_order(argv[0], [])
    print(order.total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
''',
    "web/static/cart.js": """// The shopping cart widget.
import { formatPrice } from "./format";

export function renderCart(items) {
  return items.map((item) => formatPrice(item.price)).join("\\n");
}
""",
    "web/static/format.js": """/** Format a price with two decimals and the currency sign. */
export function formatPrice(value) {
  return "€" + value.toFixed(2);
}
""",
    "invoices/invoice.go": """package invoices

import "fmt"

// Invoice is a bill sent to a customer.
type Invoice struct {
\tNumber string
\tTotal  float64
}

// Render prints the invoice as text.
func (i *Invoice) Render() string {
\treturn fmt.Sprintf("%s: %.2f", i.Number, i.Total)
}
""",
    "assets/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
    "web/static/vendor.min.js": "var a=1;" * 1000,
}

TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/shop/cli.py", line 9, in main
    order = place_order(argv[0], [])
  File "/srv/shop/shop/orders.py", line 14, in place_order
    total = compute_total(items)
  File "/srv/shop/shop/orders.py", line 9, in compute_total
    average = sum(i.price for i in items) / len(items)
ZeroDivisionError: division by zero
"""


HOOKS = (
    "reference-transaction",
    "post-checkout",
    "post-merge",
    "post-rewrite",
    "post-index-change",
    "pre-commit",
    "post-commit",
    "pre-auto-gc",
)


def make_shop(tmp_path: Path) -> Upstream:
    """The shop at ``main``: FILES, the link to /etc; cli.py was once main.py."""
    up = make_upstream(tmp_path, "shop")
    first = dict(FILES)
    first["shop/main.py"] = first.pop("shop/cli.py")
    up.commit(first, "the shop")
    plain_git(up.work, "mv", "shop/main.py", "shop/cli.py")
    up.commit_index("main.py is the command line: call it cli.py")
    (up.work / "etc-link").symlink_to("/etc")
    up.commit_index("a link outside")
    return up


def arm_traps(git_dir: Path, marker: Path) -> None:
    """Make ``git_dir`` (a bare repository or a ``.git``) run commands that append to
    ``marker``: hooks, and the ``shopmark`` filter and diff drivers .gitattributes names."""
    hooks = git_dir / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        (hooks / name).write_text(hook_script(marker))
        make_executable(hooks / name)
    command = git_dir / "shopmark-filter"  # records that it ran, passes the content through
    command.write_text(f"#!/bin/sh\necho filter >> '{marker}'\ncat\n")
    make_executable(command)
    for key in ("filter.shopmark.smudge", "filter.shopmark.clean", "diff.shopmark.textconv"):
        plain_git(git_dir, "--git-dir", str(git_dir), "config", key, str(command))
    plain_git(git_dir, "--git-dir", str(git_dir), "config", "filter.shopmark.required", "true")
