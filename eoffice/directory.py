"""LDAP / Active Directory: reading the directory (units and people) and checking a password by a bind.

The configuration comes from the settings (``EOFFICE_LDAP_*``, README). ldap3 is synchronous: every function
here blocks and is called in a thread (``anyio.to_thread.run_sync``) by ``eoffice.identity`` (login) and
``eoffice.directory_sync`` (the sync), never on the event loop.

Each unit and person is known by a stable id (``entryUUID`` in OpenLDAP, ``objectGUID`` in Active Directory,
attribute ``id`` of the mapping), so a rename or a move in the directory is a rename or a move here.
A person's unit is the organizationalUnit their entry sits under; a unit's parent the one above it.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from storage.errors import Unavailable
from storage.settings import Settings

# field -> attribute; EOFFICE_LDAP_ATTRS overrides any of them ("unit_code=" unset: codes made from names)
DEFAULT_ATTRS = {
    "id": "entryUUID",
    "username": "uid",
    "full_name": "cn",
    "email": "mail",
    "title": "title",
    "unit_name": "ou",
    "unit_kind": "businessCategory",
    "unit_code": "",
}
PAGE = 500  # entries per page of a paged search (Active Directory answers at most 1000 at once)


class DirectoryUnavailable(Unavailable):
    """The directory did not answer (or refused the search account): nothing was decided about the person."""


@dataclass(frozen=True)
class DirectoryConfig:
    url: str
    base_dn: str
    starttls: bool = False
    ca_file: str = ""
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    user_filter: str = "(objectClass=inetOrgPerson)"
    unit_filter: str = "(objectClass=organizationalUnit)"
    disabled_filter: str = ""
    attrs: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRS))
    login: str = "directory"  # or "all"
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DirectoryConfig | None:
        """None when no directory is configured (``EOFFICE_LDAP_URL`` empty)."""
        if not settings.ldap_url:
            return None
        return cls(
            url=settings.ldap_url,
            base_dn=settings.ldap_base_dn,
            starttls=settings.ldap_starttls,
            ca_file=settings.ldap_ca_file,
            bind_dn=settings.ldap_bind_dn,
            bind_password=settings.ldap_bind_password,
            user_filter=settings.ldap_user_filter,
            unit_filter=settings.ldap_unit_filter,
            disabled_filter=settings.ldap_disabled_filter,
            attrs=parse_attrs(settings.ldap_attrs),
            login=settings.ldap_login,
            timeout=settings.ldap_timeout,
        )


def parse_attrs(text: str) -> dict[str, str]:
    """``"username=sAMAccountName, id=objectGUID"`` over the defaults; unknown fields are an error."""
    attrs = dict(DEFAULT_ATTRS)
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, value = part.partition("=")
        if name.strip() not in attrs:
            raise ValueError(f"EOFFICE_LDAP_ATTRS: unknown field {name.strip()!r} (known: {', '.join(attrs)})")
        attrs[name.strip()] = value.strip()
    return attrs


@dataclass(frozen=True)
class DirUnit:
    id: str
    dn: str
    name: str
    kind: str  # the kind attribute's text as written ("Sở", "Xã"...), "" if none
    code: str  # the code attribute's value, "" if none
    parent_id: str | None  # directory id of the organizationalUnit above, None at the top


@dataclass(frozen=True)
class DirPerson:
    id: str
    dn: str
    username: str
    full_name: str
    email: str
    title: str
    unit_id: str | None
    disabled: bool


@dataclass
class Snapshot:
    units: list[DirUnit] = field(default_factory=list)  # parents before children
    people: list[DirPerson] = field(default_factory=list)


def _key(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN compared without regard to case or spacing."""
    return tuple((a.strip().lower(), v.strip().lower()) for a, v, _ in parse_dn(dn, escape=False))


def _parent(dn: str) -> tuple[tuple[str, str], ...]:
    return _key(dn)[1:]


def _first(entry: dict[str, Any], attr: str) -> str:
    if not attr:
        return ""
    values = entry["raw_attributes"].get(attr) or []
    if not values:
        # attribute names come back as the server spells them
        values = next((v for k, v in entry["raw_attributes"].items() if k.lower() == attr.lower()), [])
    return values[0].decode("utf-8", errors="replace").strip() if values else ""


def _id(entry: dict[str, Any], attr: str) -> str:
    raw: list[bytes] = next((v for k, v in entry["raw_attributes"].items() if k.lower() == attr.lower()), [])
    if not raw:
        return ""
    value: bytes = raw[0]
    if len(value) == 16:  # objectGUID: 16 bytes, little-endian fields
        return str(uuid.UUID(bytes_le=value))
    return value.decode("ascii", errors="replace").strip().lower()


def _server(config: DirectoryConfig) -> ldap3.Server:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file or None)
    return ldap3.Server(
        config.url,
        use_ssl=config.url.lower().startswith("ldaps://"),
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=config.timeout,
    )


def _connect(config: DirectoryConfig, dn: str, password: str) -> ldap3.Connection:
    """A connection bound as ``dn`` (StartTLS first when configured); raises ``LDAPException`` if refused."""
    conn = ldap3.Connection(
        _server(config),
        dn or None,
        password or None,
        receive_timeout=max(1, int(config.timeout)),
        raise_exceptions=False,
        read_only=True,
    )
    conn.open()
    if config.starttls and not conn.start_tls():
        conn.unbind()
        raise LDAPException("StartTLS was refused")
    return conn


def _service(config: DirectoryConfig) -> ldap3.Connection:
    try:
        conn = _connect(config, config.bind_dn, config.bind_password)
        if not conn.bind():
            conn.unbind()
            raise DirectoryUnavailable("Máy chủ thư mục (LDAP) từ chối tài khoản tìm kiếm đã cấu hình.")
        return conn
    except LDAPException as exc:
        raise DirectoryUnavailable(f"Không kết nối được máy chủ thư mục (LDAP): {exc}") from exc


def _search(
    conn: ldap3.Connection, base: str, query: str, attrs: list[str], scope: str = ldap3.SUBTREE
) -> Iterator[dict[str, Any]]:
    entries = conn.extend.standard.paged_search(
        base, query, scope, attributes=[a for a in attrs if a], paged_size=PAGE, generator=True
    )
    for entry in entries:
        if entry.get("type") == "searchResEntry":
            yield entry
    if conn.result and conn.result.get("result", 0) not in (0,):
        raise DirectoryUnavailable(f"Tìm kiếm trên máy chủ thư mục thất bại: {conn.result.get('description')}")


def read(config: DirectoryConfig) -> Snapshot:
    """Every unit and person under the base DN (blocking)."""
    a = config.attrs
    conn = _service(config)
    try:
        raw_units = list(
            _search(conn, config.base_dn, config.unit_filter, [a["id"], a["unit_name"], a["unit_kind"], a["unit_code"]])
        )
        raw_people = list(
            _search(
                conn,
                config.base_dn,
                config.user_filter,
                [a["id"], a["username"], a["full_name"], a["email"], a["title"]],
            )
        )
        disabled: set[str] = set()
        if config.disabled_filter:
            query = f"(&{config.user_filter}{config.disabled_filter})"
            disabled = {_id(e, a["id"]) for e in _search(conn, config.base_dn, query, [a["id"]])}
    except LDAPException as exc:
        raise DirectoryUnavailable(f"Không đọc được máy chủ thư mục (LDAP): {exc}") from exc
    finally:
        conn.unbind()
    unit_of = {_key(e["dn"]): _id(e, a["id"]) for e in raw_units}
    snap = Snapshot()
    for e in sorted(raw_units, key=lambda e: len(_key(e["dn"]))):  # parents before children
        uid = unit_of[_key(e["dn"])]
        name = _first(e, a["unit_name"]) or e["dn"].split(",")[0].partition("=")[2]
        snap.units.append(
            DirUnit(
                id=uid,
                dn=e["dn"],
                name=name,
                kind=_first(e, a["unit_kind"]),
                code=_first(e, a["unit_code"]),
                parent_id=unit_of.get(_parent(e["dn"])),
            )
        )
    for e in raw_people:
        pid = _id(e, a["id"])
        snap.people.append(
            DirPerson(
                id=pid,
                dn=e["dn"],
                username=_first(e, a["username"]).lower(),
                full_name=_first(e, a["full_name"]),
                email=_first(e, a["email"]),
                title=_first(e, a["title"]),
                unit_id=unit_of.get(_parent(e["dn"])),
                disabled=pid in disabled,
            )
        )
    return snap


def check_password(config: DirectoryConfig, username: str, password: str, directory_id: str | None) -> bool:
    """Whether ``password`` binds as the enabled directory person ``username`` (blocking). With ``directory_id``,
    the entry found must be that one. An empty password is refused here: LDAP takes it as an anonymous bind."""
    if not password or not username:
        return False
    a = config.attrs
    query = f"(&{config.user_filter}({a['username']}={escape_filter_chars(username)}))"
    conn = _service(config)
    try:
        found = list(_search(conn, config.base_dn, query, [a["id"]]))
        if len(found) != 1 or (directory_id is not None and _id(found[0], a["id"]) != directory_id):
            return False
        # disabled? A search of its own: "(!filter)" is never true when the filter names an attribute the
        # server's schema lacks (nsAccountLock in OpenLDAP), while "filter" alone is simply false there
        if config.disabled_filter and list(
            _search(conn, found[0]["dn"], config.disabled_filter, [a["id"]], scope=ldap3.BASE)
        ):
            return False
    except LDAPException as exc:
        raise DirectoryUnavailable(f"Không đọc được máy chủ thư mục (LDAP): {exc}") from exc
    finally:
        conn.unbind()
    try:
        person = _connect(config, found[0]["dn"], password)
        try:
            return bool(person.bind())
        finally:
            person.unbind()
    except LDAPException as exc:
        raise DirectoryUnavailable(f"Không kết nối được máy chủ thư mục (LDAP): {exc}") from exc
