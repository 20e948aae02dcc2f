"""BM25 search over a handful of source files, with the code-aware tokenizer."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from appliance.errors import IndexError_
from appliance.index.lexical import Bm25Index, file_document, tokenize

FILES = {
    "auth/session.py": (
        "class SessionStore:\n"
        "    def refresh_access_token(self, user):\n"
        "        return self.tokens.renew(user.id)\n"
    ),
    "web/api/client.ts": (
        "export async function refreshAccessToken(session: Session) {\n"
        "  return fetch('/token', { method: 'POST' });\n"
        "}\n"
    ),
    "billing/invoice.py": (
        "def compute_total(lines):\n"
        "    '''Sum the invoice lines, with taxes.'''\n"
        "    return sum(line.amount for line in lines)\n"
    ),
    "billing/HTTPServerError.java": (
        "public class HTTPServerError extends RuntimeException {\n"
        "  public HTTPServerError(String message) { super(message); }\n"
        "}\n"
    ),
    "docs/users.md": "How users sign in: every user gets a session cookie.\n",
    "utils/strings.go": "package utils\n\nfunc Reverse(s string) string { return s }\n",
}


def build(files: dict[str, str] = FILES) -> Bm25Index:
    index = Bm25Index()
    index.build((path, file_document(path, text)) for path, text in files.items())
    return index


def paths(hits: list[tuple[str, float]]) -> list[str]:
    return [doc_id for doc_id, _ in hits]


def test_identifiers_yield_their_parts_and_themselves() -> None:
    assert tokenize("parseHTTPRequest") == ["parsehttprequest", "parse", "http", "request"]
    assert tokenize("refresh_access_token") == [
        "refreshaccesstoken",
        "refresh",
        "access",
        "token",
    ]
    assert tokenize("RefreshAccessToken") == tokenize("refresh_access_token")
    assert tokenize("__init__") == ["init"]


def test_short_tokens_stop_words_and_punctuation_are_dropped() -> None:
    assert tokenize("if x is None: return self.a") == []
    assert tokenize("the user-id, of the session!") == ["user", "id", "session"]


def test_plurals_fold_but_compound_identifiers_stay_whole() -> None:
    assert tokenize("users entries classes caches status") == [
        "user",
        "entry",
        "class",
        "cache",
        "status",
    ]
    assert tokenize("get_users")[0] == "getusers"  # the whole identifier is exact
    assert "user" in tokenize("get_users")


def test_non_ascii_words_survive() -> None:
    assert tokenize("größe_berechnen café—naïve") == [
        "größeberechnen",
        "größe",
        "berechnen",
        "café",
        "naïve",
    ]


def test_a_camel_case_query_finds_snake_case_code_and_back() -> None:
    index = build()
    assert set(paths(index.search("refreshAccessToken", 2))) == {
        "auth/session.py",
        "web/api/client.ts",
    }
    assert paths(index.search("compute_total", 1)) == ["billing/invoice.py"]
    assert paths(index.search("ComputeTotal", 1)) == ["billing/invoice.py"]
    assert paths(index.search("http server error", 1)) == ["billing/HTTPServerError.java"]


def test_path_parts_are_searchable() -> None:
    index = build()
    assert paths(index.search("billing", 2)) == [
        "billing/invoice.py",
        "billing/HTTPServerError.java",
    ]
    assert paths(index.search("strings", 1)) == ["utils/strings.go"]


def test_a_natural_language_query_ranks_the_relevant_file_first() -> None:
    index = build()
    assert paths(index.search("where do users sign in", 3))[0] == "docs/users.md"
    assert paths(index.search("sum of invoice taxes", 3))[0] == "billing/invoice.py"


def test_results_are_sorted_positive_and_limited_to_k() -> None:
    index = build()
    hits = index.search("session token user", 10)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 for score in scores)
    assert "utils/strings.go" not in paths(hits)  # shares no token with the query
    assert len(index.search("session token user", 2)) == 2


def test_empty_index_and_empty_query_give_no_results() -> None:
    assert Bm25Index().search("anything", 5) == []
    index = build()
    assert index.search("", 5) == []
    assert index.search("the of and", 5) == []  # only stop words
    assert index.search("zzyzx", 5) == []  # unknown word
    assert index.search("session", 0) == []
    empty_docs = Bm25Index()
    empty_docs.build([("a", ""), ("b", "!!")])
    assert len(empty_docs) == 2
    assert empty_docs.search("a b", 5) == []


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = build()
    index.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25")
    assert loaded.ids == index.ids
    for query in ("refreshAccessToken", "billing", "users sign in"):
        assert loaded.search(query, 5) == index.search(query, 5)
    # a loaded index can still be updated without the original texts
    loaded.update({"new.py": "def refresh_access_token(): pass"})
    assert "new.py" in paths(loaded.search("refresh_access_token", 5))


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    Bm25Index().save(tmp_path)
    loaded = Bm25Index.load(tmp_path)
    assert len(loaded) == 0
    assert loaded.search("anything", 3) == []


def test_loading_a_missing_index_says_to_rebuild(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="rebuild the index"):
        Bm25Index.load(tmp_path / "nothing-here")


def test_update_equals_rebuild() -> None:
    index = build()
    changed = dict(FILES)
    changed["auth/session.py"] = "def logout(user): pass\n"
    changed["web/new_feature.ts"] = "export function refreshAccessToken() {}\n"
    del changed["docs/users.md"]
    index.update(
        {
            "auth/session.py": file_document("auth/session.py", changed["auth/session.py"]),
            "web/new_feature.ts": file_document(
                "web/new_feature.ts", changed["web/new_feature.ts"]
            ),
        },
        ["docs/users.md", "never/indexed.py"],
    )
    rebuilt = build(changed)
    assert index.ids == rebuilt.ids
    for query in ("refreshAccessToken", "logout user", "users sign in", "billing total"):
        assert index.search(query, 10) == rebuilt.search(query, 10)
    assert "auth/session.py" not in paths(index.search("refreshAccessToken", 10))


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(IndexError_, match=r"repeated: a\.py"):
        Bm25Index().build([("a.py", "x"), ("a.py", "y")])


def test_bag_counts_agree_with_tokenize() -> None:
    from appliance.index.lexical import _token_counts

    text = FILES["auth/session.py"] + FILES["web/api/client.ts"]
    assert _token_counts([text]) == [dict(Counter(tokenize(text)))]


def test_short_words_that_look_plural_do_not_break_the_tokenizer() -> None:
    assert tokenize("ches uses xes ies") == ["che", "use", "xes", "ies"]
