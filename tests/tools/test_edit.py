"""edit_file, create_file, delete_file and apply_diff as the model calls them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.tools.changeset import EditSession
from appliance.tools.edit import WRITE_TOOLS
from appliance.tools.files import READ_TOOLS
from appliance.tools.policy import EditPolicy
from appliance.tools.registry import ToolContext, ToolRegistry, ToolResult

ORDERS = """\
from decimal import Decimal


class Order:
    def __init__(self, lines):
        self.lines = lines

    def total(self):
        amount = Decimal(0)
        for line in self.lines:
            amount += line.price * line.quantity
        return amount

    def is_empty(self):
        return not self.lines


def refund(order):
    amount = Decimal(0)
    for line in order.lines:
        amount += line.price * line.quantity
    return -amount
"""

CART = """\
export interface Item {
  sku: string;
  price: number;
}

export function cartTotal(items: Item[]): number {
  return items.reduce((sum, item) => sum + item.price, 0);
}
"""


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "orders.py").write_text(ORDERS)
    (root / "shop" / "secrets.py").write_text("API_KEY = 'x'\n")
    (root / "shop" / "legacy.py").write_text("def old(:\n    pass\n")
    (root / "web").mkdir()
    (root / "web" / "cart.ts").write_text(CART)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(64))
    (root / "shop" / "alias.py").symlink_to("orders.py")
    (root / "hosts").symlink_to("/etc/hosts")
    return root


def context(worktree: Path, **policy: object) -> ToolContext:
    backup = worktree.parent / "backup"
    session = EditSession(worktree, EditPolicy.model_validate(policy), backup_dir=backup)
    return ToolContext(worktree=worktree, edits=session)


@pytest.fixture
def ctx(worktree: Path) -> ToolContext:
    return context(worktree, avoid_files=["shop/secrets.py"])


def run(ctx: ToolContext, name: str, **args: object) -> ToolResult:
    return ToolRegistry((*READ_TOOLS, *WRITE_TOOLS)).call(name, args, ctx)


def read(ctx: ToolContext, path: str) -> None:
    """read_file, then what the lead wires into it: the session notes the read."""
    assert run(ctx, "read_file", path=path).ok
    assert ctx.edits is not None
    ctx.edits.note_read(path)


def text(ctx: ToolContext, path: str) -> str:
    return (ctx.worktree / path).read_text()


# edit_file


def test_edit_file_replaces_the_one_match_and_reports_the_change(ctx: ToolContext) -> None:
    result = run(
        ctx,
        "edit_file",
        path="shop/orders.py",
        old="    def is_empty(self):\n        return not self.lines\n",
        new=(
            "    def is_empty(self):\n        # an order without lines\n"
            "        return not self.lines\n"
        ),
    )
    assert result.ok, result.output
    assert result.output.splitlines() == [
        "edited shop/orders.py: -0 +1 lines (now 23 lines)",
        "files changed in this task: 1 (+1 -0 lines)",
    ]
    assert "        # an order without lines\n" in text(ctx, "shop/orders.py")


def test_edit_file_without_a_match_shows_the_closest_lines_and_the_indentation(
    ctx: ToolContext,
) -> None:
    result = run(
        ctx,
        "edit_file",
        path="shop/orders.py",
        old="def is_empty(self):\n    return not self.lines",
        new="def is_empty(self):\n    return len(self.lines) == 0",
    )
    assert not result.ok
    assert result.output.splitlines()[:4] == [
        "old was not found in shop/orders.py; nothing was changed. The closest match is lines "
        "14-15 (92% similar):",
        "   14 |     def is_empty(self):",
        "   15 |         return not self.lines",
        "It differs only in indentation: line 14 starts with 4 spaces in the file and no "
        "indentation in your old text.",
    ]
    assert text(ctx, "shop/orders.py") == ORDERS


def test_edit_file_without_a_match_names_the_line_that_differs(ctx: ToolContext) -> None:
    result = run(
        ctx,
        "edit_file",
        path="shop/orders.py",
        old="    def total(self):\n        amount = Decimal(1)\n",
        new="    def total(self):\n        amount = Decimal(2)\n",
    )
    assert not result.ok
    assert "The closest match is lines 8-9" in result.output
    assert (
        "line 9 is '        amount = Decimal(0)' in the file, '        amount = Decimal(1)' "
        "in your old text" in result.output
    )


def test_edit_file_with_two_matches_lists_their_lines(ctx: ToolContext) -> None:
    result = run(
        ctx,
        "edit_file",
        path="shop/orders.py",
        old="        amount += line.price * line.quantity\n",
        new="        amount += line.subtotal()\n",
    )
    assert not result.ok
    assert result.output.startswith(
        "old occurs 2 times in shop/orders.py (starting on lines 11, 21); add neighbouring "
        "lines to old so that it matches exactly one place"
    )
    assert text(ctx, "shop/orders.py") == ORDERS


def test_an_edit_that_breaks_python_syntax_is_refused(ctx: ToolContext) -> None:
    result = run(
        ctx,
        "edit_file",
        path="shop/orders.py",
        old="    def total(self):\n",
        new="    def total(self:\n",
    )
    assert not result.ok
    assert result.output.startswith("refused: the change would break the syntax of shop/orders.py")
    assert "missing ')'" in result.output
    assert "the change is on line 8" in result.output
    assert "    8 |     def total(self:" in result.output
    assert text(ctx, "shop/orders.py") == ORDERS


def test_an_edit_that_breaks_typescript_is_refused(ctx: ToolContext) -> None:
    result = run(ctx, "edit_file", path="web/cart.ts", old="  price: number;\n}", new="  price:")
    assert not result.ok
    assert "would break the syntax of web/cart.ts" in result.output
    assert text(ctx, "web/cart.ts") == CART


def test_a_file_that_was_already_broken_may_stay_broken(ctx: ToolContext) -> None:
    result = run(ctx, "edit_file", path="shop/legacy.py", old="    pass", new="    return 1")
    assert result.ok, result.output
    assert "note: shop/legacy.py had syntax errors before this change and still has" in (
        result.output
    )
    assert text(ctx, "shop/legacy.py") == "def old(:\n    return 1\n"


def test_a_crlf_file_is_matched_and_written_with_crlf(ctx: ToolContext) -> None:
    (ctx.worktree / "notes.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    result = run(ctx, "edit_file", path="notes.txt", old="one\ntwo\n", new="one\n2\n")
    assert result.ok, result.output
    assert (ctx.worktree / "notes.txt").read_bytes() == b"one\r\n2\r\nthree\r\n"


def test_files_the_request_avoids_or_the_repository_protects_are_refused(
    worktree: Path,
) -> None:
    ctx = context(worktree, avoid_files=["shop/secrets.py"], protected=["web/**"])
    avoided = run(ctx, "edit_file", path="shop/secrets.py", old="'x'", new="'y'")
    assert not avoided.ok
    assert "shop/secrets.py is in the request's files to avoid" in avoided.output
    protected = run(ctx, "create_file", path="web/new.ts", content="export {};\n")
    assert "web/new.ts is protected by this repository's settings ('web/**')" in (protected.output)
    workflow = run(ctx, "edit_file", path=".github/workflows/ci.yml", old="push", new="pull")
    assert "unless the repository allows it" in workflow.output
    assert (worktree / "shop" / "secrets.py").read_text() == "API_KEY = 'x'\n"
    assert not (worktree / "web" / "new.ts").exists()


def test_the_files_changed_budget_is_enforced_across_tools(worktree: Path) -> None:
    ctx = context(worktree, max_files_changed=2)
    assert run(
        ctx,
        "edit_file",
        path="shop/orders.py",
        old="Decimal(0)\n        for",
        new=("Decimal(1)\n        for"),
    ).ok
    assert run(ctx, "create_file", path="shop/util.py", content="X = 1\n").ok
    refused = run(ctx, "edit_file", path="web/cart.ts", old="sku: string", new="sku: number")
    assert not refused.ok
    assert refused.output.startswith(
        "changing web/cart.ts would change more than 2 files, the most this request allows; "
        "the files changed so far are: shop/orders.py, shop/util.py"
    )
    again = run(ctx, "edit_file", path="shop/util.py", old="X = 1", new="X = 2")
    assert again.ok
    assert again.output.endswith("files changed in this task: 2 of at most 2 (+2 -1 lines)")


def test_paths_through_symlinks_or_out_of_the_worktree_are_refused(ctx: ToolContext) -> None:
    inside = run(ctx, "edit_file", path="shop/alias.py", old="Decimal(0)", new="Decimal(1)")
    assert not inside.ok
    assert "'shop/alias.py' goes through a symlink (it is really 'shop/orders.py')" in (
        inside.output
    )
    outside = run(ctx, "create_file", path="hosts", content="1.2.3.4 evil\n")
    assert "symlink to '/etc/hosts', which leaves the worktree" in outside.output
    for path in ("../escape.py", ".git/config", "/etc/passwd"):
        assert not run(ctx, "create_file", path=path, content="x\n").ok
    assert text(ctx, "shop/orders.py") == ORDERS
    assert not (ctx.worktree.parent / "escape.py").exists()
    assert (ctx.worktree / ".git" / "config").read_text() == "[core]\n"


def test_binary_files_are_not_edited(ctx: ToolContext) -> None:
    result = run(ctx, "edit_file", path="logo.png", old="PNG", new="GIF")
    assert not result.ok
    assert "logo.png is a binary file; the edit tools change text files only" in result.output


def test_without_an_edit_session_the_write_tools_say_so(worktree: Path) -> None:
    result = run(ToolContext(worktree=worktree), "create_file", path="a.py", content="")
    assert not result.ok
    assert "editing is not available in this step" in result.output


# create_file / delete_file


def test_create_file_makes_parent_directories(ctx: ToolContext) -> None:
    result = run(
        ctx, "create_file", path="shop/payments/stripe.py", content="def charge():\n    pass\n"
    )
    assert result.ok, result.output
    assert result.output.splitlines()[0] == "created shop/payments/stripe.py: +2 lines"
    assert text(ctx, "shop/payments/stripe.py") == "def charge():\n    pass\n"


def test_create_file_refuses_an_existing_file_and_broken_code(ctx: ToolContext) -> None:
    exists = run(ctx, "create_file", path="shop/orders.py", content="")
    assert (
        exists.output == "shop/orders.py already exists; use edit_file (or apply_diff) to change it"
    )
    broken = run(ctx, "create_file", path="shop/new.py", content="def f(\n")
    assert not broken.ok
    assert "would break the syntax of shop/new.py" in broken.output
    assert not (ctx.worktree / "shop" / "new.py").exists()
    assert text(ctx, "shop/orders.py") == ORDERS


def test_delete_file_needs_an_earlier_read(ctx: ToolContext) -> None:
    refused = run(ctx, "delete_file", path="shop/orders.py")
    assert not refused.ok
    assert "shop/orders.py has not been read in this task; read it first" in refused.output
    assert (ctx.worktree / "shop" / "orders.py").exists()
    read(ctx, "shop/orders.py")
    deleted = run(ctx, "delete_file", path="shop/orders.py")
    assert deleted.ok, deleted.output
    assert deleted.output.splitlines()[0] == "deleted shop/orders.py: -22 lines"
    assert not (ctx.worktree / "shop" / "orders.py").exists()


def test_a_file_the_agent_created_may_be_deleted(ctx: ToolContext) -> None:
    assert run(ctx, "create_file", path="tmp_notes.md", content="draft\n").ok
    assert run(ctx, "delete_file", path="tmp_notes.md").ok
    assert not (ctx.worktree / "tmp_notes.md").exists()


# apply_diff

MULTI_FILE_DIFF = """\
--- a/shop/orders.py
+++ b/shop/orders.py
@@ -14,2 +14,5 @@ class Order:
     def is_empty(self):
         return not self.lines
+
+    def count(self):
+        return len(self.lines)
--- a/web/cart.ts
+++ b/web/cart.ts
@@ -1,4 +1,5 @@
 export interface Item {
   sku: string;
   price: number;
+  quantity: number;
 }
"""


def test_apply_diff_changes_several_files(ctx: ToolContext) -> None:
    result = run(ctx, "apply_diff", diff=MULTI_FILE_DIFF)
    assert result.ok, result.output
    assert result.output.splitlines() == [
        "applied the diff to 2 files:",
        "  edited shop/orders.py: -0 +3 lines (now 25 lines)",
        "  edited web/cart.ts: -0 +1 lines (now 9 lines)",
        "files changed in this task: 2 (+4 -0 lines)",
    ]
    assert text(ctx, "shop/orders.py").endswith(
        "        return not self.lines\n\n    def count(self):\n        return len(self.lines)\n"
        "\n\ndef refund(order):\n" + ORDERS.split("def refund(order):\n")[1]
    )
    assert "  quantity: number;\n}" in text(ctx, "web/cart.ts")


def test_a_bad_hunk_applies_nothing_and_shows_expected_and_actual(ctx: ToolContext) -> None:
    diff = MULTI_FILE_DIFF.replace("   price: number;\n+", "   price: string;\n+")
    result = run(ctx, "apply_diff", diff=diff)
    assert not result.ok
    lines = result.output.splitlines()
    assert lines[0] == (
        "hunk 1 of web/cart.ts (@@ -1,4 +1,5 @@) does not match web/cart.ts; nothing was changed."
    )
    assert "    3 |   price: string;" in lines  # what the hunk expects
    assert "    3 |   price: number;" in lines  # what the file has
    assert "line 3 is '  price: number;' in the file, '  price: string;' in the hunk" in (
        result.output
    )
    assert text(ctx, "shop/orders.py") == ORDERS
    assert text(ctx, "web/cart.ts") == CART


def test_apply_diff_creates_and_deletes_files_through_dev_null(ctx: ToolContext) -> None:
    read(ctx, "shop/legacy.py")
    diff = """\
diff --git a/shop/discounts.py b/shop/discounts.py
new file mode 100644
--- /dev/null
+++ b/shop/discounts.py
@@ -0,0 +1,2 @@
+def apply(amount, percent):
+    return amount * (100 - percent) / 100
--- a/shop/legacy.py
+++ /dev/null
@@ -1,2 +0,0 @@
-def old(:
-    pass
"""
    result = run(ctx, "apply_diff", diff=diff)
    assert result.ok, result.output
    assert result.output.splitlines()[1:3] == [
        "  created shop/discounts.py: +2 lines",
        "  deleted shop/legacy.py: -2 lines",
    ]
    assert text(ctx, "shop/discounts.py").startswith("def apply(amount, percent):\n")
    assert not (ctx.worktree / "shop" / "legacy.py").exists()


def test_apply_diff_deletes_only_files_read_before(ctx: ToolContext) -> None:
    diff = "--- a/web/cart.ts\n+++ /dev/null\n"
    result = run(ctx, "apply_diff", diff=diff)
    assert not result.ok
    assert "web/cart.ts has not been read in this task; read it first" in result.output
    assert text(ctx, "web/cart.ts") == CART


def test_apply_diff_forgives_a_fence_wrong_counts_and_a_wrong_line_number(
    ctx: ToolContext,
) -> None:
    diff = """```diff
--- a/shop/orders.py
+++ b/shop/orders.py
@@ -2,9 +2,9 @@
 def refund(order):
-    amount = Decimal(0)
+    amount = Decimal("0.00")
     for line in order.lines:
```"""
    result = run(ctx, "apply_diff", diff=diff)
    assert result.ok, result.output
    assert 'def refund(order):\n    amount = Decimal("0.00")\n' in text(ctx, "shop/orders.py")
    assert "    def total(self):\n        amount = Decimal(0)\n" in text(ctx, "shop/orders.py")


def test_apply_diff_refuses_a_hunk_that_matches_several_places(ctx: ToolContext) -> None:
    settings = ctx.worktree / "shop" / "settings.py"
    settings.write_text("DEBUG = False\nCURRENCY = 'EUR'\nDEBUG = False\n")
    diff = (
        "--- a/shop/settings.py\n+++ b/shop/settings.py\n"
        "@@ -2 +2 @@\n-DEBUG = False\n+DEBUG = True\n"
    )
    result = run(ctx, "apply_diff", diff=diff)
    assert not result.ok
    assert "matches 2 places (lines 1, 3) and its header names line 2" in result.output
    assert settings.read_text() == "DEBUG = False\nCURRENCY = 'EUR'\nDEBUG = False\n"
    at_line_3 = diff.replace("@@ -2 +2 @@", "@@ -3 +3 @@")
    assert run(ctx, "apply_diff", diff=at_line_3).ok
    assert settings.read_text() == "DEBUG = False\nCURRENCY = 'EUR'\nDEBUG = True\n"


def test_apply_diff_that_breaks_syntax_changes_no_file(ctx: ToolContext) -> None:
    diff = MULTI_FILE_DIFF.replace("+    def count(self):", "+    def count(self:")
    result = run(ctx, "apply_diff", diff=diff)
    assert not result.ok
    assert "would break the syntax of shop/orders.py" in result.output
    assert text(ctx, "web/cart.ts") == CART


def test_apply_diff_explains_an_unparseable_diff(ctx: ToolContext) -> None:
    result = run(ctx, "apply_diff", diff="please change total() to round the amount")
    assert not result.ok
    assert result.output.startswith("the diff names no file; send a unified diff like:")


def test_apply_diff_on_a_crlf_file_keeps_its_line_ends(ctx: ToolContext) -> None:
    (ctx.worktree / "shop" / "tax.py").write_bytes(b"RATE = 20\r\nNAME = 'VAT'\r\n")
    diff = (
        "--- a/shop/tax.py\n+++ b/shop/tax.py\n"
        "@@ -1,2 +1,2 @@\n-RATE = 20\n+RATE = 21\n NAME = 'VAT'\n"
    )
    result = run(ctx, "apply_diff", diff=diff)
    assert result.ok, result.output
    assert (ctx.worktree / "shop" / "tax.py").read_bytes() == b"RATE = 21\r\nNAME = 'VAT'\r\n"


def test_text_with_a_nul_byte_is_not_written(ctx: ToolContext) -> None:
    result = run(ctx, "create_file", path="shop/blob.txt", content="a\x00b")
    assert not result.ok
    assert "contains a NUL byte" in result.output
    assert not (ctx.worktree / "shop" / "blob.txt").exists()


def test_apply_diff_keeps_an_executable_bit(ctx: ToolContext) -> None:
    script = ctx.worktree / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    diff = "--- a/run.sh\n+++ b/run.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo hi\n+echo hello\n"
    assert run(ctx, "apply_diff", diff=diff).ok
    assert script.read_text() == "#!/bin/sh\necho hello\n"
    assert os.stat(script).st_mode & 0o777 == 0o755


def test_a_file_read_through_read_file_may_then_be_deleted(tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / "old.py").write_text("x = 1\n")
    session = EditSession(worktree, EditPolicy(), backup_dir=tmp_path / "backups")
    ctx = ToolContext(worktree=worktree, edits=session)
    tools = ToolRegistry((*READ_TOOLS, *WRITE_TOOLS))
    refused = tools.call("delete_file", {"path": "old.py"}, ctx)
    assert not refused.ok
    assert tools.call("read_file", {"path": "old.py"}, ctx).ok
    assert tools.call("delete_file", {"path": "old.py"}, ctx).ok
    assert not (worktree / "old.py").exists()
