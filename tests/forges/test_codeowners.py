from __future__ import annotations

from appliance.forges.codeowners import parse_codeowners

CODEOWNERS = """\
# comment
*                 @acme/platform
*.js              @js-owner   # trailing comment
/build/logs/      @doctocat
docs/*            docs@example.com
apps/             @octocat
**/logs           @monalisa
/src/generated/
"""


def test_last_matching_rule_wins_with_githubs_pattern_semantics() -> None:
    owners = parse_codeowners(CODEOWNERS)
    assert owners.owners_of("README") == ("@acme/platform",)
    assert owners.owners_of("web/app.js") == ("@js-owner",)
    assert owners.owners_of("build/logs/2024/out.txt") == ("@monalisa",)  # later rule wins
    assert owners.owners_of("docs/getting-started.md") == ("docs@example.com",)
    assert owners.owners_of("docs/build-app/troubleshooting.md") == ("@acme/platform",)
    assert owners.owners_of("x/apps/main.py") == ("@octocat",)
    assert owners.owners_of("deep/a/logs/x.txt") == ("@monalisa",)
    assert owners.owners_of("src/generated/api.py") == ()  # ownership cleared


def test_owners_for_changed_files_are_unique_in_first_seen_order() -> None:
    owners = parse_codeowners(CODEOWNERS)
    assert owners.owners_for(["a.js", "README", "b.js"]) == ["@js-owner", "@acme/platform"]


def test_gitlab_sections_are_skipped_but_their_rules_count() -> None:
    owners = parse_codeowners("[Backend][2] @lead\n/src/ @alice\n^[Docs]\n*.md @bob\n")
    assert owners.as_dict() == {"/src/": ("@alice",), "*.md": ("@bob",)}
