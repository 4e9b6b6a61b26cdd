"""One frozen settings object, read from EOFFICE_* environment variables.

Defaults point at the embedded setup under ./var/: a SQLite file, blobs on the local
filesystem and an in-process broker, so the server runs with no other service.

Key material is *not* under var/: ``secret_key`` comes from ``EOFFICE_SECRET_KEY`` or the file
``secret_key`` in the key directory (``EOFFICE_KEY_DIR``, default ``$XDG_STATE_HOME/eoffice/keys``,
i.e. ``~/.local/state/eoffice/keys``); see ``storage.keys`` for the order, the move of an old
``var/secret_key`` and what a backup must keep apart. It keys the audit chain (``eoffice.audit``)
and wraps each open secret poll's ballot key (``meetings.voting``). A backup of var/ alone
(database + blobs) restores everything except the ability to verify the audit chain and to count
secret polls that were open at the time; back the key up separately, never next to the data.
Files and directories the server creates (the SQLite file and its -wal/-shm, var/, blobs, keys)
get mode 0600/0700 whatever the umask (``storage.private_files``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage.keys import key_dir, load_secret_key

DEFAULT_UPLOAD_LIMIT = 100 * 1024 * 1024  # 100 MiB: a 300-page scanned agenda document fits
DEFAULT_UPLOAD_QUOTA = 1024 * 1024 * 1024  # 1 GiB waiting to be attached: ten full-size files at once


def _digest_hour(value: str) -> int | None:
    """EOFFICE_DIGEST_HOUR: 0..23 (local time), or "off"/"" to leave the digest to cron."""
    if value.strip().lower() in ("", "off", "no", "false"):
        return None
    hour = int(value)
    if not 0 <= hour <= 23:
        raise ValueError(f"EOFFICE_DIGEST_HOUR must be 0..23 or off, not {value!r}")
    return hour


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off")


def _files_origin(value: str) -> str:
    """EOFFICE_FILES_ORIGIN: ``https://files.example`` (scheme and host, no path), or "" to serve files from the
    app's own origin. It must be another host name than the app's, not just another port: cookies are shared
    across the ports of one host."""
    value = value.strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise ValueError(f"EOFFICE_FILES_ORIGIN must look like https://files.example.gov.vn, not {value!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _words(value: str) -> tuple[str, ...]:
    """A list setting: words separated by commas or spaces."""
    return tuple(w for w in value.replace(",", " ").split() if w)


def _oidc_match(value: str) -> str:
    value = value.strip().lower() or "username"
    if value not in ("username", "email"):
        raise ValueError(f"EOFFICE_OIDC_MATCH must be username or email, not {value!r}")
    return value
def _ldap_env(env: os._Environ[str]) -> dict[str, Any]:
    """The EOFFICE_LDAP_* variables that are set (the others keep the defaults)."""
    values: dict[str, Any] = {}
    for name, kind in (("url", str), ("starttls", bool), ("ca_file", str), ("base_dn", str), ("bind_dn", str),
                       ("bind_password", str), ("user_filter", str), ("unit_filter", str),
                       ("disabled_filter", str), ("attrs", str), ("login", str), ("sync_seconds", float),
                       ("timeout", float)):
        raw = env.get(f"EOFFICE_LDAP_{name.upper()}")
        if raw is None:
            continue
        values[f"ldap_{name}"] = _flag(raw) if kind is bool else kind(raw.strip() if name != "bind_password" else raw)
    if values.get("ldap_login", "directory") not in ("directory", "all"):
        raise ValueError(f"EOFFICE_LDAP_LOGIN must be directory or all, not {values['ldap_login']!r}")
    return values


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///var/eoffice.db"
    blob_url: str = "file://var/blobs"
    recording_dir: str = "var/recordings"  # video recordings being written, before they go to the blob store
    broker_url: str = "memory://"
    secret_key: str = field(default="", repr=False)
    key_dir: str = ""  # where the secret's file is (storage.keys.key_dir); "" when given directly
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    timezone: str = "Asia/Ho_Chi_Minh"
    session_days: int = 7
    secure_cookies: bool = False
    login_max_failures: int = 5
    login_window_seconds: int = 15 * 60
    ws_heartbeat_seconds: float = 20.0
    ws_queue_size: int = 256
    event_log_size: int = 1000
    digest_hour: int | None = None  # local hour of the daily digest sent by the server; None: not sent
    files_origin: str = ""  # web.file_response: a separate origin for user files ("" = the app's own)
    gc_freeze: bool = False  # web.gc_policy: survivors of full collections frozen (on for a server from the env)
    # PDF workers (eoffice.pdfsandbox): seconds per page/inspection, per file's text, MiB per worker, workers
    pdf_timeout: float = 15.0
    pdf_extract_timeout: float = 120.0
    pdf_memory_mb: int = 1024
    pdf_processes: int = 2
    pdf_max_pages: int = 2000
    # office files and scans (eoffice.renditions, #16): LibreOffice converts to a PDF rendition, Tesseract reads
    # scans; each run in its own process group with a time limit (seconds) and an address-space cap (MiB)
    office_enabled: bool = True
    ocr_enabled: bool = True
    soffice_path: str = "soffice"
    tesseract_path: str = "tesseract"
    office_timeout: float = 120.0
    ocr_timeout: float = 120.0
    converter_memory_mb: int = 2048
    converter_processes: int = 1
    ocr_languages: str = "vie"  # Tesseract -l; "vie+eng" confuses diacritics more (bench/ocr.py)
    upload_quota: int = DEFAULT_UPLOAD_QUOTA  # bytes a user may have uploaded and not attached; 0: no quota
    upload_keep_hours: float = 24.0  # an upload never attached is removed after this long; 0: kept
    prerender_pages: int = 3  # meetings.prerender: first pages of a meeting document rendered ahead; 0: none
    metrics_token: str = field(default="", repr=False)  # web.metrics: bearer token for /metrics ("" = loopback only)
    log_format: str = "text"  # web.request_id: "json" for one JSON object per log line (eoffice serve)
    # web.drain: after SIGTERM, /readyz answers 503 for drain_delay seconds while requests are still taken (the
    # load balancer notices), then new connections are refused and in-flight ones get drain_grace seconds
    drain_delay: float = 5.0
    drain_grace: float = 30.0
    # notifications (eoffice.notifications): kept this many days (0: kept), checks of deadlines every so many seconds,
    # reminded this many days before, escalated to the unit's head after this many days overdue (0: never)
    notify_keep_days: float = 90.0
    notify_check_seconds: float = 900.0
    notify_due_days: int = 1
    consultation_remind_hours: float = 24.0  # members not yet answering are reminded this long before
    notify_escalate_days: int = 2
    public_url: str = ""  # the server's address as users reach it, for links in e-mails ("" : paths only)
    # e-mail of notifications (eoffice.mail); off while smtp_host is empty
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = ""
    mail_retry_seconds: float = 60.0  # first retry after this long, doubled per failed attempt, at most an hour
    # (the same for Web Push and SMS, which share the outbox's loop: eoffice.outbox)
    # Web Push (eoffice.channels): off by default -- the browsers' push services are the vendors', outside the
    # agency's network; push_subject is the VAPID contact ("mailto:..." or "https://...")
    push_enabled: bool = False
    push_subject: str = ""
    push_hosts: tuple[str, ...] = ()  # push services allowed besides the browsers' vendors' (https) ones
    # SMS of urgent notifications through the agency's gateway (eoffice.channels); off while sms_url is empty
    sms_url: str = ""
    sms_token: str = field(default="", repr=False)
    # exchange between installations (#16, eoffice.exchange): first retry of an undelivered package (doubled per
    # attempt, at most an hour), the largest request body the inbox takes, the platform packages leave through
    exchange_retry_seconds: float = 60.0
    exchange_max_bytes: int = 64 * 1024 * 1024
    exchange_platform: str = "direct"
    job_retry_seconds: float = 30.0  # a background job hit by an outage (S3, database): first retry, then doubled
    # OpenID Connect login (eoffice.sso, web.routes.sso), beside local passwords; off while oidc_issuer is empty
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = field(default="", repr=False)
    oidc_scopes: str = "openid profile email"
    oidc_match: str = "username"  # "username": the local username is the claim oidc_claim; "email": the e-mail
    oidc_claim: str = "preferred_username"
    oidc_jit_unit: str = ""  # unit code for accounts created at first SSO login; "" : no creation
    oidc_jit_role: str = "specialist"
    oidc_mfa_amr: tuple[str, ...] = ()  # amr values that count as the provider's own second factor
    oidc_mfa_acr: tuple[str, ...] = ()  # acr values that do
    oidc_button: str = "Đăng nhập bằng tài khoản một cửa / SSO"
    # LDAP / Active Directory (eoffice.directory): off while ldap_url is empty. Accounts from the directory log in by
    # a bind to it ("all": local accounts too, when their local password fails) and are kept in step with it every
    # ldap_sync_seconds (0: only by `eoffice directory sync`)
    ldap_url: str = ""  # ldap://host:389 or ldaps://host:636
    ldap_starttls: bool = False
    ldap_ca_file: str = ""  # CA certificates (PEM) that sign the server's certificate ("": the system's)
    ldap_base_dn: str = ""
    ldap_bind_dn: str = ""  # the account that searches ("": anonymous)
    ldap_bind_password: str = field(default="", repr=False)
    ldap_user_filter: str = "(objectClass=inetOrgPerson)"
    ldap_unit_filter: str = "(objectClass=organizationalUnit)"
    ldap_disabled_filter: str = "(|(nsAccountLock=TRUE)(pwdAccountLockedTime=*)(employeeType=disabled))"
    ldap_attrs: str = ""  # overrides of the attribute mapping: "username=sAMAccountName,id=objectGUID,..."
    ldap_login: str = "directory"  # directory: directory accounts bind; all: local accounts may bind too
    ldap_sync_seconds: float = 3600.0
    ldap_timeout: float = 10.0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        var_dir = Path(os.environ.get("EOFFICE_VAR_DIR", "var"))
        env = os.environ
        settings = cls(
            database_url=env.get("EOFFICE_DATABASE_URL", f"sqlite+aiosqlite:///{var_dir}/eoffice.db"),
            blob_url=env.get("EOFFICE_BLOB_URL", f"file://{var_dir}/blobs"),
            recording_dir=env.get("EOFFICE_RECORDING_DIR", f"{var_dir}/recordings"),
            broker_url=env.get("EOFFICE_BROKER_URL", "memory://"),
            secret_key=load_secret_key(var_dir),
            key_dir="" if env.get("EOFFICE_SECRET_KEY") else str(key_dir()),
            upload_limit=int(env.get("EOFFICE_UPLOAD_LIMIT", DEFAULT_UPLOAD_LIMIT)),
            timezone=env.get("EOFFICE_TIMEZONE", "Asia/Ho_Chi_Minh"),
            secure_cookies=env.get("EOFFICE_SECURE_COOKIES", "") in ("1", "true", "yes"),
            digest_hour=_digest_hour(env.get("EOFFICE_DIGEST_HOUR", "7")),
            files_origin=_files_origin(env.get("EOFFICE_FILES_ORIGIN", "")),
            gc_freeze=env.get("EOFFICE_GC_FREEZE", "1") not in ("0", "false", "no", "off"),
            pdf_timeout=float(env.get("EOFFICE_PDF_TIMEOUT", 15)),
            pdf_extract_timeout=float(env.get("EOFFICE_PDF_EXTRACT_TIMEOUT", 120)),
            pdf_memory_mb=int(env.get("EOFFICE_PDF_MEMORY_MB", 1024)),
            pdf_processes=int(env.get("EOFFICE_PDF_PROCESSES", 2)),
            pdf_max_pages=int(env.get("EOFFICE_PDF_MAX_PAGES", 2000)),
            office_enabled=_flag(env.get("EOFFICE_OFFICE_ENABLED", "1")),
            ocr_enabled=_flag(env.get("EOFFICE_OCR_ENABLED", "1")),
            soffice_path=env.get("EOFFICE_SOFFICE_PATH", "soffice"),
            tesseract_path=env.get("EOFFICE_TESSERACT_PATH", "tesseract"),
            office_timeout=float(env.get("EOFFICE_OFFICE_TIMEOUT", 120)),
            ocr_timeout=float(env.get("EOFFICE_OCR_TIMEOUT", 120)),
            converter_memory_mb=int(env.get("EOFFICE_CONVERTER_MEMORY_MB", 2048)),
            converter_processes=int(env.get("EOFFICE_CONVERTER_PROCESSES", 1)),
            ocr_languages=env.get("EOFFICE_OCR_LANGUAGES", "vie").strip() or "vie",
            upload_quota=int(env.get("EOFFICE_UPLOAD_QUOTA", DEFAULT_UPLOAD_QUOTA)),
            upload_keep_hours=float(env.get("EOFFICE_UPLOAD_KEEP_HOURS", 24)),
            prerender_pages=max(0, int(env.get("EOFFICE_PRERENDER_PAGES", 3))),
            metrics_token=env.get("EOFFICE_METRICS_TOKEN", ""),
            log_format=env.get("EOFFICE_LOG_FORMAT", "text").strip().lower() or "text",
            drain_delay=float(env.get("EOFFICE_DRAIN_DELAY", 5)),
            drain_grace=float(env.get("EOFFICE_DRAIN_GRACE", 30)),
            notify_keep_days=float(env.get("EOFFICE_NOTIFY_KEEP_DAYS", 90)),
            notify_check_seconds=float(env.get("EOFFICE_NOTIFY_CHECK_SECONDS", 900)),
            notify_due_days=int(env.get("EOFFICE_NOTIFY_DUE_DAYS", 1)),
            consultation_remind_hours=float(env.get("EOFFICE_CONSULTATION_REMIND_HOURS", 24)),
            notify_escalate_days=int(env.get("EOFFICE_NOTIFY_ESCALATE_DAYS", 2)),
            public_url=env.get("EOFFICE_PUBLIC_URL", "").strip().rstrip("/"),
            smtp_host=env.get("EOFFICE_SMTP_HOST", "").strip(),
            smtp_port=int(env.get("EOFFICE_SMTP_PORT", 587)),
            smtp_starttls=env.get("EOFFICE_SMTP_STARTTLS", "1").strip().lower() not in ("0", "false", "no", "off"),
            smtp_user=env.get("EOFFICE_SMTP_USER", ""),
            smtp_password=env.get("EOFFICE_SMTP_PASSWORD", ""),
            smtp_from=env.get("EOFFICE_SMTP_FROM", "").strip(),
            mail_retry_seconds=float(env.get("EOFFICE_MAIL_RETRY_SECONDS", 60)),
            job_retry_seconds=float(env.get("EOFFICE_JOB_RETRY_SECONDS", 30)),
            exchange_retry_seconds=float(env.get("EOFFICE_EXCHANGE_RETRY_SECONDS", 60)),
            exchange_max_bytes=int(env.get("EOFFICE_EXCHANGE_MAX_BYTES", 64 * 1024 * 1024)),
            exchange_platform=env.get("EOFFICE_EXCHANGE_PLATFORM", "direct").strip().lower() or "direct",
            push_enabled=env.get("EOFFICE_PUSH_ENABLED", "0").strip().lower() in ("1", "true", "yes", "on"),
            push_subject=env.get("EOFFICE_PUSH_SUBJECT", "").strip(),
            push_hosts=tuple(h.strip().lower() for h in env.get("EOFFICE_PUSH_HOSTS", "").split(",") if h.strip()),
            sms_url=env.get("EOFFICE_SMS_URL", "").strip(),
            sms_token=env.get("EOFFICE_SMS_TOKEN", ""),
            oidc_issuer=env.get("EOFFICE_OIDC_ISSUER", "").strip().rstrip("/"),
            oidc_client_id=env.get("EOFFICE_OIDC_CLIENT_ID", "").strip(),
            oidc_client_secret=env.get("EOFFICE_OIDC_CLIENT_SECRET", ""),
            oidc_scopes=env.get("EOFFICE_OIDC_SCOPES", "").strip() or "openid profile email",
            oidc_match=_oidc_match(env.get("EOFFICE_OIDC_MATCH", "username")),
            oidc_claim=env.get("EOFFICE_OIDC_CLAIM", "").strip() or "preferred_username",
            oidc_jit_unit=env.get("EOFFICE_OIDC_JIT_UNIT", "").strip(),
            oidc_jit_role=env.get("EOFFICE_OIDC_JIT_ROLE", "").strip() or "specialist",
            oidc_mfa_amr=_words(env.get("EOFFICE_OIDC_MFA_AMR", "")),
            oidc_mfa_acr=_words(env.get("EOFFICE_OIDC_MFA_ACR", "")),
            oidc_button=env.get("EOFFICE_OIDC_BUTTON", "").strip() or "Đăng nhập bằng tài khoản một cửa / SSO",
            **_ldap_env(env),
        )
        return replace(settings, **overrides)  # type: ignore[arg-type]
