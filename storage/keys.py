"""Key material: where the server's secret lives, and the keys derived from it.

One secret (``Settings.secret_key``) signs sessions and CSRF tokens and is the master from which
purpose keys are derived (HMAC-SHA256 of a label): the audit chain's MAC key and the key that wraps
each secret poll's own ballot key. It is looked up, in order:

1. ``EOFFICE_SECRET_KEY`` (the value itself; e.g. from a systemd credential or a secrets manager);
2. the file ``secret_key`` in the key directory: ``EOFFICE_KEY_DIR``, else
   ``$XDG_STATE_HOME/eoffice/keys``, else ``~/.local/state/eoffice/keys`` -- *outside* the data
   directory (``var/``), so a copy of the database and blobs (a backup, a stolen disk image of the
   data volume, a reader of ``var/``) does not carry the key that authenticates the audit chain or
   unwraps an open poll's ballot key;
3. neither: a new random secret is written there (directory 0700, file 0600).

A ``var/secret_key`` left by an older version is moved into the key directory on first start (and
overwritten and removed from ``var/``); if the key directory already holds a different secret, the
old file is kept and used, with a warning (set ``EOFFICE_KEY_DIR`` per installation when one host
runs several).

Backups: keep the secret (the key directory, or the ``EOFFICE_SECRET_KEY`` value) apart from the
database backups, and keep it: without it the audit chain cannot be verified (``eoffice audit
verify`` reports every keyed entry as altered) and secret polls open at the time of the backup
cannot be counted. A closed poll needs no key (its ballots are stored in plaintext, shuffled).

Databases register the secret they are used with (``register``), by URL, so the domain modules
find their keys from a unit of work without passing settings around.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from storage.private_files import DIR_MODE, create_private_file, private_dir, tighten

log = logging.getLogger(__name__)

SECRET_FILE = "secret_key"
UNREGISTERED = "eoffice-unregistered"  # the secret of a database nobody registered one for (see ``secret_for``)


def key_dir() -> Path:
    """The directory of the key material (see the module docstring)."""
    env = os.environ.get("EOFFICE_KEY_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "eoffice" / "keys"


def load_secret_key(var_dir: Path) -> str:
    """The server's secret (module docstring), created in the key directory on first use."""
    env = os.environ.get("EOFFICE_SECRET_KEY")
    if env:
        return env
    directory = key_dir()
    path = directory / SECRET_FILE
    legacy = var_dir / SECRET_FILE
    if legacy.exists():
        old = legacy.read_text().strip()
        if path.exists() and path.read_text().strip() != old:
            log.warning("%s differs from %s; using the old one. Set EOFFICE_KEY_DIR per installation.",
                        legacy, path)
            return old
        private_dir(directory)
        tighten(directory, DIR_MODE)
        create_private_file(path, old.encode())
        _shred(legacy)
        log.warning("moved the secret key from %s to %s (outside the data directory)", legacy, path)
        return old
    if not path.exists():
        private_dir(directory)
        tighten(directory, DIR_MODE)
        create_private_file(path, secrets.token_urlsafe(48).encode())
    return path.read_text().strip()


def _shred(path: Path) -> None:
    """Overwrite a small file before removing it (best effort: journaling filesystems may keep copies)."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        pass
    path.unlink(missing_ok=True)


# ---------------------------------------------------------------- derived keys, per database

_SECRETS: dict[str, str] = {}


def _norm(url: str | URL) -> str:
    """One spelling per database (a URL object from an engine, or the string it was made from)."""
    return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=False)


def register(url: str | URL, secret_key: str) -> None:
    """The database at ``url`` is used with this secret (the app and the CLI call it at start)."""
    if secret_key:
        _SECRETS[_norm(url)] = secret_key


def registered(url: str | URL) -> bool:
    return _norm(url) in _SECRETS


def secret_for(url: str | URL) -> str:
    """The registered secret; unregistered databases (unit tests, ad-hoc scripts) get a fixed public one,
    so what they write is authenticated by nothing: the app and every CLI command register theirs."""
    return _SECRETS.get(_norm(url), UNREGISTERED)


def derive(secret_key: str, label: str) -> bytes:
    return hmac.new(secret_key.encode(), label.encode(), hashlib.sha256).digest()


def key_for(url: str | URL, label: str) -> bytes:
    """The purpose key ``label`` of the database at ``url``."""
    return derive(secret_for(url), label)
