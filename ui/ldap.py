"""LDAP sign-in: a simple bind as the user (StartTLS or LDAPS), then their groups mapped
to a role. Uses ``ldap3``; its errors are turned into :class:`LdapError` here.

:func:`authenticate` returns the role, or None when the directory refuses the password;
it raises :class:`LdapError` when the directory cannot be asked (down, TLS failure) or
the user is in no mapped group and no default role is set.
"""

from __future__ import annotations

import ssl
import warnings
from typing import Any

from appliance.config import LdapSettings
from appliance.store.models import Role


class LdapError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _escape_dn_value(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        elif ord(ch) < 32:
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def _escape_filter_value(value: str) -> str:
    return "".join(f"\\{ord(c):02x}" if c in "*()\\\x00" else c for c in value)


def authenticate(cfg: LdapSettings, username: str, password: str) -> Role | None:
    with warnings.catch_warnings():
        # ldap3 2.9.1 imports names pyasn1 0.6 deprecated (tagMap, typeMap); harmless
        warnings.filterwarnings("ignore", r"(tagMap|typeMap) is deprecated", DeprecationWarning)
        import ldap3
        from ldap3.core import exceptions as lx

    if not password:
        return None  # an empty password would be an anonymous bind: never a sign-in
    user_dn = cfg.user_dn_template.format(username=_escape_dn_value(username))
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_file=cfg.ca_file or None,
        version=ssl.PROTOCOL_TLS_CLIENT,
    )
    use_ssl = cfg.url.lower().startswith("ldaps://")
    try:
        with warnings.catch_warnings():
            # ldap3 2.9.1 checks host names with ssl.match_hostname (deprecated in 3.7,
            # its own copy on 3.12+); the check itself is sound
            warnings.filterwarnings("ignore", r"ssl\.match_hostname", DeprecationWarning)
            roles_groups = _bind_and_groups(ldap3, cfg, user_dn, password, tls, use_ssl)
    except lx.LDAPException as exc:
        raise LdapError(
            f"The directory at {cfg.url} could not be asked ({type(exc).__name__}: {exc}); "
            "sign in with a local account or ask an admin to check ui.ldap."
        ) from exc
    if roles_groups is None:
        return None
    groups = roles_groups
    roles = [Role(cfg.group_roles[g]) for g in groups if g in cfg.group_roles]
    if roles:
        return max(roles, key=lambda r: r.rank)
    if cfg.default_role:
        return Role(cfg.default_role)
    raise LdapError(
        f"{username} signed in to the directory but is in no group mapped to a role "
        "(ui.ldap.group_roles); ask an admin to add you to one."
    )


def _groups(conn: object, cfg: LdapSettings, user_dn: str) -> set[str]:
    """The DNs and cns of the user's groups."""
    if not cfg.group_base:
        return set()
    query = cfg.group_filter.format(user_dn=_escape_filter_value(user_dn))
    conn.search(cfg.group_base, query, attributes=["cn"])  # type: ignore[attr-defined]
    found: set[str] = set()
    for entry in conn.entries:  # type: ignore[attr-defined]
        found.add(str(entry.entry_dn))
        cn = entry.cn.value if "cn" in entry else None
        if isinstance(cn, list):
            found.update(str(c) for c in cn)
        elif cn:
            found.add(str(cn))
    return found


def _bind_and_groups(
    ldap3: Any, cfg: LdapSettings, user_dn: str, password: str, tls: Any, use_ssl: bool
) -> set[str] | None:
    """Bind as the user; their groups, or None when the password is refused."""
    timeout = max(1, round(cfg.timeout_seconds))  # ldap3 packs it as an int socket option
    server = ldap3.Server(cfg.url, use_ssl=use_ssl, tls=tls, connect_timeout=timeout)
    conn = ldap3.Connection(
        server,
        user=user_dn,
        password=password,
        receive_timeout=timeout,
        raise_exceptions=False,
        read_only=True,
    )
    try:
        conn.open()
        if cfg.start_tls and not use_ssl:
            conn.start_tls()
        if not conn.bind():
            return None
        return _groups(conn, cfg, user_dn)
    finally:
        conn.unbind()
