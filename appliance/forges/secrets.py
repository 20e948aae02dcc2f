"""Forge tokens encrypted at rest with the appliance's secret key.

The store keeps ``encrypt(token, secret_key)``; a forge is built from
``decrypt(stored, secret_key)``. The Fernet key (AES-128-CBC + HMAC-SHA256) is derived
from the secret key with HKDF-SHA256, a fixed salt and an info string that names the
purpose, so the same secret key used for sessions yields an unrelated key here:

* salt: ``b"coding-agent-appliance/forge-tokens"`` (fixed: changing it makes every
  stored token unreadable)
* info: ``b"fernet-key-v1"``

When the secret key changed since a token was stored, :func:`decrypt` raises
:class:`~appliance.forges.errors.ForgeTokenUnreadable` naming the setting, rather than
a bare ``InvalidToken``. :func:`mask` gives the only form of a token fit for a page.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.forges.errors import ForgeTokenUnreadable

HKDF_SALT = b"coding-agent-appliance/forge-tokens"
HKDF_INFO = b"fernet-key-v1"

# Prefixes a token's owner recognises; they carry no secret (GitHub and GitLab publish them).
_KNOWN_PREFIXES = (
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "glpat-",
    "gloas-",
    "gldt-",
    "glptt-",
)


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ForgeTokenUnreadable(
            "the appliance secret key is empty: set APPLIANCE_SECURITY__SECRET_KEY"
        )
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str, secret_key: str) -> str:
    """Encrypt a token for storage; the result is ASCII and differs on every call."""
    return _fernet(secret_key).encrypt(plain.encode()).decode("ascii")


def decrypt(token: str, secret_key: str) -> str:
    """Decrypt a stored token, or say that the secret key changed since it was stored."""
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise ForgeTokenUnreadable(
            "the stored forge token cannot be decrypted: the appliance secret key "
            "(APPLIANCE_SECURITY__SECRET_KEY) changed since it was saved, or the stored "
            "value is damaged. Restore the previous secret key, or enter the forge token "
            "again in the forge settings."
        ) from exc


def mask(token: str) -> str:
    """``glpat-abcdefgh…wxyz`` → ``glpat-****wxyz``: the prefix and the last 4 characters."""
    prefix = next((p for p in _KNOWN_PREFIXES if token.startswith(p)), "")
    rest = token[len(prefix) :]
    if len(rest) < 12:  # too short to show any of it safely
        return prefix + "****"
    return f"{prefix}****{rest[-4:]}"
