"""LDAP sign-in against a real OpenLDAP (Debian's ``slapd``), started in a temp dir with a
generated config and a trustme CA, over StartTLS; groups map to roles."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import LdapSettings
from appliance.store.models import Role
from tests.servers import free_port
from tests.ui.conftest import Ui, csrf_of
from ui.ldap import LdapError, authenticate

SLAPD = "/usr/sbin/slapd"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _slapd_present() -> None:
    """The LDAP test needs a real OpenLDAP server: without one it fails, loudly."""
    if not Path(SLAPD).exists() or shutil.which("slapadd") is None:
        pytest.fail("slapd is missing: run `make test`, or apt-get install slapd ldap-utils")


BASE = "dc=example,dc=org"
DATA = f"""dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,{BASE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: alice-secret

dn: uid=bob,ou=people,{BASE}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: bob-secret

dn: cn=devs,ou=groups,{BASE}
objectClass: groupOfNames
cn: devs
member: uid=alice,ou=people,{BASE}
"""


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    import trustme

    root = tmp_path_factory.mktemp("slapd")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
    (root / "db").mkdir()
    conf = root / "slapd.conf"
    conf.write_text(
        "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n"
        "include /etc/ldap/schema/inetorgperson.schema\n"
        "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        f"pidfile {root}/slapd.pid\n"
        f"TLSCACertificateFile {root}/ca.pem\nTLSCertificateFile {root}/server.pem\n"
        f"TLSCertificateKeyFile {root}/server.key\n"
        f'database mdb\nsuffix "{BASE}"\nrootdn "cn=admin,{BASE}"\nrootpw admin-secret\n'
        f"directory {root}/db\n"
        "access to attrs=userPassword by anonymous auth by self read by * none\n"
        "access to * by users read by * none\n"
    )
    (root / "data.ldif").write_text(DATA)
    subprocess.run(
        ["slapadd", "-f", str(conf), "-l", str(root / "data.ldif")], check=True, capture_output=True
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [SLAPD, "-f", str(conf), "-h", f"{url}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["ldapsearch", "-x", "-H", url, "-b", "", "-s", "base"], capture_output=True
            )
            if probe.returncode in (0, 32, 50):
                break
            time.sleep(0.1)
        yield url, root / "ca.pem"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def _cfg(url: str, ca: Path, **extra: object) -> LdapSettings:
    return LdapSettings.model_validate(
        {
            "url": url,
            "start_tls": True,
            "ca_file": str(ca),
            "user_dn_template": f"uid={{username}},ou=people,{BASE}",
            "group_base": f"ou=groups,{BASE}",
            "group_roles": {"devs": "developer"},
            **extra,
        }
    )


def test_member_of_a_mapped_group_gets_its_role(slapd: tuple[str, Path]) -> None:
    url, ca = slapd
    assert authenticate(_cfg(url, ca), "alice", "alice-secret") == Role.developer


def test_wrong_password_is_refused(slapd: tuple[str, Path]) -> None:
    url, ca = slapd
    assert authenticate(_cfg(url, ca), "alice", "nope") is None
    assert authenticate(_cfg(url, ca), "alice", "") is None  # never an anonymous bind


def test_user_in_no_mapped_group_is_told_why(slapd: tuple[str, Path]) -> None:
    url, ca = slapd
    with pytest.raises(LdapError, match="no group mapped"):
        authenticate(_cfg(url, ca), "bob", "bob-secret")
    assert authenticate(_cfg(url, ca, default_role="viewer"), "bob", "bob-secret") == Role.viewer


def test_an_untrusted_certificate_is_refused(slapd: tuple[str, Path], tmp_path: Path) -> None:
    import trustme

    url, _ = slapd
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(LdapError, match="could not be asked"):
        authenticate(_cfg(url, other), "alice", "alice-secret")


@pytest.fixture
def ldap_env(slapd: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca = slapd
    monkeypatch.setenv("APPLIANCE_UI__LDAP__URL", url)
    monkeypatch.setenv("APPLIANCE_UI__LDAP__CA_FILE", str(ca))
    monkeypatch.setenv("APPLIANCE_UI__LDAP__USER_DN_TEMPLATE", f"uid={{username}},ou=people,{BASE}")
    monkeypatch.setenv("APPLIANCE_UI__LDAP__GROUP_BASE", f"ou=groups,{BASE}")
    monkeypatch.setenv("APPLIANCE_UI__LDAP__GROUP_ROLES", '{"devs": "developer"}')


def test_directory_user_signs_in_to_the_ui(ldap_env: None, ui: Ui) -> None:
    page = ui.client.get("/login")
    assert "directory (LDAP) accounts" in page.text
    resp = ui.client.post(
        "/login",
        data={"username": "alice", "password": "alice-secret", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    home = ui.client.get("/").text
    assert "alice" in home
    assert "developer" in home
    ui.client.cookies.clear()
    page = ui.client.get("/login")
    refused = ui.client.post(
        "/login",
        data={"username": "bob", "password": "bob-secret", "csrf_token": csrf_of(page.text)},
    )
    assert refused.status_code == 401
    assert "no group mapped to a role" in refused.text
