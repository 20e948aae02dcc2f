"""A small realistic multi-language repository for the index tests, built with real git."""

from __future__ import annotations

from pathlib import Path

from tests.gitrepos import FileContent, Upstream, make_upstream

FILES: dict[str, FileContent] = {
    "README.md": "# Shop\n\nOrders, pricing and invoices for the web shop.\n",
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


def make_shop(tmp_path: Path) -> Upstream:
    up = make_upstream(tmp_path, "shop")
    up.commit(FILES, "the shop")
    (up.work / "etc-link").symlink_to("/etc")
    up.commit_index("a link outside")
    return up
