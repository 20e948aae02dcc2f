from __future__ import annotations

import pytest

from appliance.forges.errors import ForgeTokenUnreadable
from appliance.forges.secrets import decrypt, encrypt, mask

KEY = "a-long-appliance-secret-key-for-tests"


def test_round_trip_and_ciphertext_hides_the_token() -> None:
    token = "glpat-Zx9Yw8Vu7Ts6Rq5Po4Nm"
    stored = encrypt(token, KEY)
    assert token not in stored
    assert stored != encrypt(token, KEY)  # a fresh IV each time
    assert decrypt(stored, KEY) == token


def test_changed_secret_key_gives_a_clear_error() -> None:
    stored = encrypt("ghp_abcdefghijklmnopqrstuvwxyz0123456789", KEY)
    with pytest.raises(ForgeTokenUnreadable, match=r"APPLIANCE_SECURITY__SECRET_KEY.*changed"):
        decrypt(stored, "another-secret-key")
    with pytest.raises(ForgeTokenUnreadable, match="damaged"):
        decrypt("not a fernet token", KEY)


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        ("glpat-Zx9Yw8Vu7Ts6Rq5Po4Nm", "glpat-****o4Nm"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_****6789"),
        ("github_pat_11ABCDEFG0123456789_abcdefXYZ", "github_pat_****fXYZ"),
        ("plainsecretvalue123", "****e123"),
        ("short", "****"),
        ("glpat-abc", "glpat-****"),
    ],
)
def test_mask_keeps_only_prefix_and_last_four(token: str, shown: str) -> None:
    assert mask(token) == shown
