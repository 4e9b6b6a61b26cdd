"""The `eoffice` command: serve, migrate, demo, user add|passwd|deactivate|activate|list, org import,
directory sync, token create|list|revoke, audit verify|anchor, uploads clean, jobs list|retry, edxml import/export,
exchange key|peer add|peer list, backup, restore, restore-check."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from storage import keys
from storage.db import Database
from storage.settings import Settings


def _progress(label: str, total: int) -> Callable[[int], None]:
    """A plain terminal progress bar (no extra dependency)."""
    width = 30
    tty = sys.stderr.isatty()

    def show(done: int) -> None:
        if total <= 0 or not (tty or done == total):
            return
        if done % 200 and done != total:
            return
        filled = int(width * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


async def _with_db(settings: Settings, fn: Callable[[Database], Awaitable[int]], publish: bool = False) -> int:
    """A database for one command; with ``publish`` its events also go to the broker, so users
    logged in on a server (sharing a Redis broker) see them live; they are in the event log anyway."""
    from storage.pubsub import open_broker  # lazy: a command loads only what it uses

    broker = open_broker(settings.broker_url) if publish else None
    db = Database(settings.database_url, publisher=broker.publish if broker else None)
    keys.register(db.url, settings.secret_key)  # audit entries written here are keyed like the server's
    from web.services import wire_notifications  # lazy, as above

    wire_notifications(db, settings)  # an import or a digest from here notifies people as the server would
    try:
        return await fn(db)
    finally:
        await db.dispose()
        if broker is not None:
            await broker.close()


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from storage.migrate import migrate  # lazy: a command loads only what it uses

    migrate(settings.database_url, on_wait=lambda message: print(message, file=sys.stderr, flush=True))
    asyncio.run(_with_db(settings, _seal_audit_legacy))
    print(f"Cơ sở dữ liệu đã được cập nhật: {_safe_url(settings.database_url)}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import demo  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        from meetings.demo import create_demo_meeting  # lazy: a command loads only what it uses
        from storage.blobs import open_blob_store  # lazy: a command loads only what it uses

        blobs = open_blob_store(settings.blob_url)
        try:
            async with db.uow() as uow:
                if not await demo.is_empty(uow):
                    print("Cơ sở dữ liệu đã có tài khoản: bỏ qua dữ liệu mẫu.")
                    return 0
                created = await demo.load_demo(uow)
                meeting = await create_demo_meeting(uow, blobs)
                if meeting is None:  # load_demo just created the accounts it needs
                    raise RuntimeError("demo accounts missing after loading the demo")
                jobs = await demo.load_demo_documents(uow, blobs)  # text extracted at the server's start
                await uow.commit()
        finally:
            await blobs.close()
        print(f"Đã tạo cuộc họp mẫu: {meeting.title}")
        print(f"Đã vào sổ {len(demo.DOCUMENTS)} văn bản đến mẫu ({len(jobs)} tệp PDF chờ trích xuất nội dung)")
        print(f"Đã tạo dữ liệu mẫu. Mật khẩu của mọi tài khoản: {demo.DEMO_PASSWORD}")
        for username, name, title in created:
            print(f"  {username:<20} {name} — {title}")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select  # lazy: a command loads only what it uses

    from eoffice import identity  # lazy: a command loads only what it uses
    from eoffice.org import Unit  # lazy: a command loads only what it uses

    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif password is None:
        password = getpass.getpass("Mật khẩu: ")
        if getpass.getpass("Nhập lại mật khẩu: ") != password:
            print("Hai lần nhập mật khẩu không khớp.", file=sys.stderr)
            return 2

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            unit_id = None
            if args.unit:
                unit_id = await uow.session.scalar(select(Unit.id).where(Unit.code == args.unit))
                if unit_id is None:
                    print(f"Không có đơn vị mã «{args.unit}».", file=sys.stderr)
                    return 2
            user = await identity.create_user(uow, None, username=args.username, full_name=args.name,
                                              password=password, roles=args.role or ["specialist"],
                                              unit_id=unit_id, title=args.title or "")
            await uow.commit()
        print(f"Đã tạo tài khoản «{user.username}» ({', '.join(user.roles)}).")
        return 0

    return asyncio.run(_with_db(settings, run))


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password: --password-stdin, or asked twice on the terminal (None: the two differ)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Mật khẩu mới: ")
    if getpass.getpass("Nhập lại mật khẩu mới: ") != password:
        print("Hai lần nhập mật khẩu không khớp.", file=sys.stderr)
        return None
    return password


async def _close_sockets(settings: Settings, revoked: Any, reason: str) -> None:
    """Ask every server sharing the broker (Redis) to close the sockets ``revoked`` ended."""
    from storage.pubsub import open_broker  # lazy: a command loads only what it uses
    from web.hub import close_message  # lazy: a command loads only what it uses

    if revoked is None:
        return
    broker = open_broker(settings.broker_url)
    try:
        await broker.publish([close_message(revoked.user_id, reason, keep=revoked.keep,
                                            only=list(revoked.only) if revoked.only is not None else None)])
    except Exception as exc:  # the credentials are dead anyway: every request and command checks them
        print(f"Cảnh báo: không báo được cho máy chủ để đóng kết nối trực tiếp ({exc}).", file=sys.stderr)
    finally:
        await broker.close()


def cmd_user_passwd(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import accounts, identity  # lazy: a command loads only what it uses

    password = _read_password(args)
    if password is None:
        return 2

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            user = await identity.get_user(uow, args.username)
            revoked = await accounts.reset_password(uow, None, user, password)
            await uow.commit()
        await _close_sockets(settings, revoked, "password reset")
        print(f"Đã đặt mật khẩu mới cho «{user.username}»; mọi phiên đăng nhập và mã truy cập cũ đã bị thu hồi.")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_user_two_factor_reset(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import identity, two_factor  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            user = await identity.get_user(uow, args.username)
            await two_factor.admin_reset(uow, None, user)
            await uow.commit()
        print(f"Đã đặt lại xác thực hai lớp của «{user.username}»: lần đăng nhập tới chỉ cần mật khẩu"
              " (hoặc phải đăng ký lại nếu vai trò bắt buộc).")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_user_two_factor_roles(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import two_factor  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            if args.role is not None:
                await two_factor.set_required_roles(uow, None, [r for r in args.role if r])
                await uow.commit()
            roles = sorted(await two_factor.required_roles(uow))
        print("Vai trò bắt buộc xác thực hai lớp: " + (", ".join(roles) or "không có"))
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_user_active(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import accounts, identity  # lazy: a command loads only what it uses

    active = args.user_command == "activate"

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            user = await identity.get_user(uow, args.username)
            revoked = await accounts.set_active(uow, None, user, active)
            await uow.commit()
        await _close_sockets(settings, revoked, "account deactivated")
        print(f"Đã mở khóa tài khoản «{user.username}»." if active else
              f"Đã khóa tài khoản «{user.username}»; mọi phiên, kết nối và mã truy cập đã dừng.")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_user_list(settings: Settings, _args: argparse.Namespace) -> int:
    from eoffice import accounts  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow(readonly=True) as uow:
            users = await accounts.list_users(uow, None)
        for u in users:
            state = "hoạt động" if u.active else "ĐÃ KHÓA"
            print(f"{u.id:>5}  {u.username:<24} {state:<10} {','.join(u.roles):<22} {u.full_name}")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import identity  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            user = await identity.get_user(uow, args.username)
            token = await identity.create_token(uow, None, user, args.name or "cli", scope=args.scope,
                                                expires_days=args.expires_days)
            await uow.commit()
        print(token)
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import accounts, identity  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow(readonly=True) as uow:
            user = await identity.get_user(uow, args.username)
            tokens = await accounts.list_tokens(uow, None, user)
        for t in tokens:
            state = "ĐÃ THU HỒI" if t.revoked else "hiệu lực"
            expires = f"{t.expires_at:%d/%m/%Y}" if t.expires_at else "không hết hạn"
            used = f"{t.last_used_at:%d/%m/%Y %H:%M}" if t.last_used_at else "chưa dùng"
            print(f"{t.id:>5}  {t.scope:<5} {state:<11} hết hạn: {expires:<14} dùng: {used:<17} {t.name}")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import accounts  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            revoked = await accounts.revoke_token(uow, None, args.token_id)
            await uow.commit()
        await _close_sockets(settings, revoked, "token revoked")
        print(f"Đã thu hồi mã truy cập #{args.token_id}.")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_org_import(settings: Settings, args: argparse.Namespace) -> int:
    """Units and accounts from CSV/XLSX files (eoffice.org_tables): matched by code and username."""
    from eoffice import org_import, org_tables  # lazy: a command loads only what it uses

    tables = [t for name in args.files for t in org_tables.read_tables(Path(name))]  # Invalid: main() says why

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            try:
                plan = await org_import.plan_import(uow, None, tables, deactivate_missing=args.deactivate_missing)
            except org_import.ImportRejected as exc:
                for line in exc.errors:
                    print(line, file=sys.stderr)
                print(exc.message, file=sys.stderr)
                return 2
            for warning in plan.warnings:
                print(f"Lưu ý: {warning}", file=sys.stderr)
            if args.dry_run or args.verbose:
                for change in plan.changes:
                    print(change.line())
            if args.dry_run:
                print(f"Chạy thử, chưa ghi gì: sẽ {plan.summary()}.")
                return 0
            revoked = await org_import.apply_plan(uow, None, plan, progress=_progress("Nhập tổ chức",
                                                                                       len(plan.changes)))
            await uow.commit()
        for r in revoked:
            await _close_sockets(settings, r, "account deactivated")
        print(f"Đã {plan.summary()}." if plan.changes else "Không có gì thay đổi.")
        created = [c.key for c in plan.changes if c.action == "create" and c.kind == "user"]
        if created:
            print(f"{len(created)} tài khoản mới chưa có mật khẩu, chưa đăng nhập được: quản trị viên đặt mật khẩu "
                  "cho từng người bằng «eoffice user passwd TÊN» (hoặc trang quản trị).")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_directory_sync(settings: Settings, args: argparse.Namespace) -> int:
    """Units and accounts from the LDAP directory (eoffice.directory_sync), as the server does every so often."""
    from eoffice import directory, directory_sync  # lazy: a command loads only what it uses

    config = directory.DirectoryConfig.from_settings(settings)
    if config is None:
        print("Chưa cấu hình thư mục LDAP: đặt EOFFICE_LDAP_URL, EOFFICE_LDAP_BASE_DN... (xem README).",
              file=sys.stderr)
        return 2

    async def run(db: Database) -> int:
        bar: dict[str, Callable[[int], None]] = {}

        def progress(done: int, total: int) -> None:
            bar.setdefault("show", _progress("Đồng bộ thư mục", total))(done)

        result = await directory_sync.sync(db, config, dry_run=args.dry_run, progress=progress,
                                           close=lambda r: _close_sockets(settings, r, "account deactivated"))
        plan = result.plan
        for warning in plan.warnings:
            print(f"Lưu ý: {warning}", file=sys.stderr)
        if args.dry_run or args.verbose:
            for change in plan.changes:
                print(change.line())
        if args.dry_run:
            print(f"Chạy thử, chưa ghi gì: sẽ {plan.summary()}." if plan.changes else
                  "Chạy thử: không có gì thay đổi.")
        else:
            print(f"Đã {plan.summary()}." if plan.changes else "Không có gì thay đổi.")
        return 0

    return asyncio.run(_with_db(settings, run))


async def _seal_audit_legacy(db: Database) -> int:
    from eoffice import audit  # lazy: a command loads only what it uses

    await audit.seal_legacy(db)
    return 0


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select  # lazy: a command loads only what it uses

    from eoffice import audit  # lazy: a command loads only what it uses

    anchor = None
    if args.anchor:
        try:
            anchor = audit.Anchor.from_json(Path(args.anchor).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"Không đọc được tệp neo {args.anchor}: {exc}", file=sys.stderr)
            return 2

    async def run(db: Database) -> int:
        async with db.uow(readonly=True) as uow:
            total = int(await uow.session.scalar(select(func.count()).select_from(audit.AuditEntry)) or 0)
            result = await audit.verify(uow.session, progress=_progress("Kiểm tra nhật ký", total), anchor=anchor)
        if result.ok:
            print(f"Nhật ký toàn vẹn: {result.checked} mục, chuỗi băm khớp"
                  + (f", mục neo {anchor.seq} còn nguyên." if anchor else "."))
            return 0
        print(f"NHẬT KÝ BỊ SAI LỆCH tại mục {result.broken_at}: {result.reason}. "
              f"({result.checked} mục đầu hợp lệ)", file=sys.stderr)
        return 1

    return asyncio.run(_with_db(settings, run))


def cmd_audit_anchor(settings: Settings, args: argparse.Namespace) -> int:
    """Print (or write to a file) the chain's head, to keep outside the server."""
    from eoffice import audit  # lazy: a command loads only what it uses

    heads: list[audit.Anchor] = []

    async def run(db: Database) -> int:
        async with db.uow(readonly=True) as uow:
            heads.append(await audit.anchor(uow.session))
        return 0

    asyncio.run(_with_db(settings, run))
    text = heads[0].to_json() + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Đã ghi neo nhật ký (mục {heads[0].seq}) vào {args.output}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# ---- edXML (issue 9) ----------------------------------------------------------------------------

def _edxml_user(args: argparse.Namespace) -> str:
    name = args.as_user or os.environ.get("EOFFICE_EDXML_USER", "")
    if not name:
        raise SystemExit("Cần chỉ rõ tài khoản văn thư: --as TÊN (hoặc biến EOFFICE_EDXML_USER).")
    return name


def cmd_edxml_import(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path  # lazy: a command loads only what it uses

    import anyio  # lazy: a command loads only what it uses

    from eoffice import edxml, identity  # lazy: a command loads only what it uses
    from storage.blobs import open_blob_store  # lazy: a command loads only what it uses

    username = _edxml_user(args)

    async def run(db: Database) -> int:
        blobs = open_blob_store(settings.blob_url)
        show, failed = _progress("Nhập gói tin edXML", len(args.files)), 0
        try:
            for i, name in enumerate(args.files, 1):
                data = await anyio.Path(name).read_bytes()
                async with db.uow() as uow:
                    user = await identity.get_user(uow, username)
                    result = await edxml.import_package(uow, user, blobs, data, Path(name).name)
                    await uow.commit()
                if result.ok:
                    doc = result.document
                    print(f"{name}: {result.action}" + (f" — văn bản #{doc.id} ({doc.notation})" if doc else ""))
                else:
                    failed += 1
                    print(f"{name}: TỪ CHỐI — {result.message} (cách ly #{result.quarantine.id})"  # type: ignore[union-attr]
                          , file=sys.stderr)
                show(i)
        finally:
            await blobs.close()
        return 1 if failed else 0

    return asyncio.run(_with_db(settings, run))


def cmd_edxml_export(settings: Settings, args: argparse.Namespace) -> int:
    import anyio  # lazy: a command loads only what it uses

    from eoffice import edxml, identity  # lazy: a command loads only what it uses
    from storage.blobs import open_blob_store  # lazy: a command loads only what it uses

    username = _edxml_user(args)

    async def run(db: Database) -> int:
        blobs = open_blob_store(settings.blob_url)
        try:
            async with db.uow() as uow:
                user = await identity.get_user(uow, username)
                data = await edxml.export_document(uow, user, blobs, args.doc_id)
                await uow.commit()
        finally:
            await blobs.close()
        await anyio.Path(args.output).write_bytes(data)
        print(f"Đã xuất văn bản #{args.doc_id} ra {args.output} ({len(data)} byte).")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_digest(settings: Settings, args: argparse.Namespace) -> int:
    """The daily reminder of overdue and due-soon tasks (run it from cron once a day)."""
    import datetime as dt  # lazy: a command loads only what it uses

    from eoffice import digest, tasks  # lazy: a command loads only what it uses
    from eoffice.registers import local_date  # lazy: a command loads only what it uses
    from storage.db import utcnow  # lazy: a command loads only what it uses

    try:
        day = dt.date.fromisoformat(args.date) if args.date else None
    except ValueError:
        print(f"Ngày không hợp lệ: «{args.date}» (dạng YYYY-MM-DD).", file=sys.stderr)
        return 2

    async def run(db: Database) -> int:
        # the same claim as the server's scheduler (EOFFICE_DIGEST_HOUR): cron and the server
        # together send a day's reminder once; --force sends it again
        when = day or local_date(utcnow())
        async with db.uow() as uow:
            if args.force:
                sent: int | None = await tasks.send_daily_digests(uow, when)
            else:
                sent = await digest.claim_and_send(uow, when, f"cli:{os.getpid()}")
            await uow.commit()
        if sent is None:
            print(f"Nhắc việc ngày {when:%d/%m/%Y} đã được gửi (dùng --force để gửi lại).")
        else:
            print(f"Đã gửi nhắc việc cho {sent} người.")
        return 0

    return asyncio.run(_with_db(settings, run, publish=True))


def cmd_uploads_clean(settings: Settings, args: argparse.Namespace) -> int:
    """Remove uploads never attached to anything after EOFFICE_UPLOAD_KEEP_HOURS (the server does it
    every hour too), and their files where nothing else uses them."""
    from eoffice import upload_limits  # lazy: a command loads only what it uses
    from storage.blobs import open_blob_store  # lazy: a command loads only what it uses

    hours = settings.upload_keep_hours if args.hours is None else args.hours
    if hours <= 0:
        print("Số giờ giữ tệp phải lớn hơn 0.", file=sys.stderr)
        return 2

    async def run(db: Database) -> int:
        blobs = open_blob_store(settings.blob_url)
        try:
            done = await upload_limits.clean(db, blobs, hours)
        finally:
            await blobs.close()
        print(f"Đã xóa {done.uploads} tệp tải lên chưa đính kèm quá {hours:g} giờ "
              f"({done.blobs} tệp lưu trữ, {done.bytes} byte).")
        return 0

    return asyncio.run(_with_db(settings, run))


# ---- backup and restore (issue 17) -------------------------------------------------------------

def cmd_jobs_list(settings: Settings, _args: argparse.Namespace) -> int:
    from eoffice import jobs  # lazy: a command loads only what it uses
    from eoffice.agency_time import AGENCY_TZ  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow(readonly=True) as uow:
            listed = await jobs.problem_jobs(uow, None)
        if not listed:
            print("Không có tác vụ nền nào bị lỗi hoặc đang chờ thử lại.")
            return 0
        for job in listed:
            at = job.next_attempt_at
            when = at.astimezone(AGENCY_TZ).strftime("%d/%m/%Y %H:%M") if at else "—"
            print(f"{job.key:<14} {job.status_label:<28} lần {job.attempts:<3} thử lại: {when:<16} "
                  f"{job.label}: {job.subject}")
            if job.error:
                print(f"{'':<14} lỗi: {job.error}")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_jobs_retry(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import jobs  # lazy: a command loads only what it uses
    from eoffice.ingest import IngestRunner  # lazy: a command loads only what it uses

    if (args.job is None) == (not args.all):
        print("Cho một mã tác vụ (xem «eoffice jobs list») hoặc --all.", file=sys.stderr)
        return 2

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            count = await jobs.retry(uow, None, None if args.all else args.job)
            await uow.commit()
        print(f"Đã xếp {count} tác vụ chạy lại; máy chủ đang chạy sẽ nhận trong vòng "
              f"{IngestRunner.RETRY_POLL:.0f} giây.")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """Database + blobs (+ the secret with --include-keys) into one archive, while the server runs."""
    from storage import backup  # lazy: a command loads only what it uses
    from storage.blobs import open_blob_store  # lazy: a command loads only what it uses
    from storage.private_files import private_dir  # lazy: a command loads only what it uses

    if args.target.endswith(os.sep):  # a directory named as one: created (0700) if missing
        private_dir(args.target)

    async def run() -> int:
        blobs = open_blob_store(settings.blob_url)
        try:
            result = await backup.backup(settings.database_url, blobs, Path(args.target),
                                         secret_key=settings.secret_key if args.include_keys else None,
                                         progress=_progress)
        except backup.BackupError as exc:
            print(f"Lỗi: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await blobs.close()
        m = result.manifest
        print(f"Đã sao lưu vào {result.path}: cơ sở dữ liệu {m['dialect']} (lược đồ "
              f"{', '.join(m['alembic_revision']) or '—'}, {sum(m['counts'].values())} dòng), "
              f"{m['blobs']['count']} tệp ({m['blobs']['bytes']} byte).")
        if args.include_keys:
            print("CẢNH BÁO: bản sao lưu này chứa khóa bí mật của máy chủ: cất nó như cất khóa, "
                  "không để cạnh các bản sao lưu khác.", file=sys.stderr)
        else:
            where = (f"tệp {settings.key_dir}/secret_key" if settings.key_dir
                     else "giá trị của biến EOFFICE_SECRET_KEY")
            print(f"Khóa bí mật KHÔNG có trong bản sao lưu: hãy cất riêng {where}, không để cạnh bản sao lưu "
                  "(xem README, «Sao lưu và khôi phục»).")
        return 0

    return asyncio.run(run())


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """An archive into an empty database and blob store, then migrated when it is older than this code."""
    from storage import backup  # lazy: a command loads only what it uses
    from storage.blobs import open_blob_store  # lazy: a command loads only what it uses

    async def run() -> int:
        blobs = open_blob_store(settings.blob_url)
        try:
            result = await backup.restore(Path(args.archive), settings.database_url, blobs, force=args.force,
                                          progress=_progress)
        except backup.BackupError as exc:
            print(f"Lỗi: {exc.message}", file=sys.stderr)
            return 1
        finally:
            await blobs.close()
        m = result.manifest
        print(f"Đã khôi phục {args.archive} vào {_safe_url(settings.database_url)}: "
              f"{sum(result.counts.values())} dòng, {result.blobs} tệp"
              + (f"; đã cập nhật lược đồ từ {', '.join(m['alembic_revision'])}." if result.migrated else "."))
        if result.secret_key and result.secret_key != settings.secret_key:
            if args.install_keys and settings.key_dir:
                kept = _install_secret(Path(settings.key_dir), result.secret_key)
                print(f"Đã đặt khóa bí mật trong bản sao lưu làm khóa của máy chủ ({settings.key_dir}/secret_key); "
                      f"khóa cũ được giữ ở {kept}.")
            else:
                print("Bản sao lưu có khóa bí mật khác khóa của máy này: đặt nó làm khóa của máy chủ (chạy lại "
                      "với --install-keys, hoặc đặt EOFFICE_SECRET_KEY bằng nội dung keys/secret_key trong bản "
                      "sao lưu) trước khi khởi động, nếu không nhật ký hệ thống không kiểm tra được và phiếu kín "
                      "đang mở không kiểm được.", file=sys.stderr)
        elif args.install_keys and not result.secret_key:
            print("Bản sao lưu không chứa khóa bí mật (tạo bằng «eoffice backup --include-keys»): khóa hiện có "
                  "được giữ nguyên.", file=sys.stderr)
        return 0

    return asyncio.run(run())


def _install_secret(directory: Path, secret: str) -> Path:
    """The archive's secret as the key directory's ``secret_key``; the old file kept beside it (0600)."""
    import datetime as dt  # lazy: a command loads only what it uses

    from storage.private_files import create_private_file, private_dir  # lazy: a command loads only what it uses

    private_dir(directory)
    path = directory / "secret_key"
    kept = directory / f"secret_key.before-restore-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    if path.exists():
        os.replace(path, kept)
    create_private_file(path, secret.encode())
    return kept


def cmd_restore_check(settings: Settings, args: argparse.Namespace) -> int:
    """Restore into a scratch place and verify checksums, blobs, row counts and the audit chain."""
    from eoffice.restore_check import restore_check  # lazy: a command loads only what it uses
    from storage import backup  # lazy: a command loads only what it uses

    try:
        report = asyncio.run(restore_check(Path(args.archive), settings.secret_key, args.scratch_db,
                                           progress=_progress))
    except backup.BackupError as exc:
        print(f"BẢN SAO LƯU KHÔNG DÙNG ĐƯỢC: {exc.message}", file=sys.stderr)
        return 1
    for line in report.lines:
        print(line)
    if report.ok:
        print("Kết quả: bản sao lưu khôi phục được, mọi kiểm tra đều khớp.")
        return 0
    for problem in report.problems:
        print(f"SAI: {problem}", file=sys.stderr)
    return 1


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # lazy: a command loads only what it uses

    from storage.migrate import schema_state  # lazy: a command loads only what it uses
    from web import request_id, ws_protocol  # lazy: a command loads only what it uses

    if args.workers > 1 and settings.broker_url.startswith("memory:"):
        print("Nhiều tiến trình (--workers) cần một broker dùng chung: đặt EOFFICE_BROKER_URL=redis://...; với "
              "memory:// sự kiện trực tiếp của tiến trình này không tới máy tính bảng nối với tiến trình khác.\n"
              "Several worker processes need a shared broker: set EOFFICE_BROKER_URL=redis://... (with memory:// "
              "live events of one process never reach tablets connected to another).", file=sys.stderr)
        return 2
    if args.migrate:
        cmd_migrate(settings, args)
    state = asyncio.run(schema_state(settings.database_url))
    if not state.up_to_date:  # migrating is its own step (storage.migrate): never half-done by a server start
        print(state.message(), file=sys.stderr)
        return 3
    print(f"Phục vụ tại http://{args.host}:{args.port}", flush=True)
    grace = settings.drain_grace if args.drain_grace is None else args.drain_grace
    delay = settings.drain_delay if args.drain_delay is None else args.drain_delay
    options: dict[str, Any] = dict(
        factory=True, host=args.host, port=args.port, log_level=args.log_level,
        log_config=request_id.logging_config(settings.log_format, args.log_level),
        # X-Forwarded-For/-Proto are believed from these addresses only (uvicorn's default without a list: 127.0.0.1)
        proxy_headers=args.proxy_headers or bool(args.trusted_proxies),
        forwarded_allow_ips=args.trusted_proxies or None, ws_ping_interval=None, ws=ws_protocol.PROTOCOL,
        # live events are written by the hub itself, deflated once per event (web.ws_protocol)
        ws_per_message_deflate=not args.no_ws_compression,
        timeout_graceful_shutdown=grace if grace > 0 else None)
    from web.drain import DrainServer, serve_workers  # lazy: a command loads only what it uses

    if args.workers > 1:  # uvicorn's supervisor; each worker drains on SIGTERM (web.drain)
        serve_workers(uvicorn.Config("web.app:create_app", workers=args.workers, **options), delay)
        return 0

    server = DrainServer(uvicorn.Config("web.app:create_app", **options), delay)
    server.run()
    return 0 if server.started else 3


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url  # lazy: a command loads only what it uses

    return make_url(url).render_as_string(hide_password=True)


# ---- exchange between installations (issue 16) --------------------------------------------------------------------

def cmd_exchange_key(settings: Settings, _args: argparse.Namespace) -> int:
    from eoffice.exchange_sign import public_key_text  # lazy: a command loads only what it uses

    print(public_key_text(settings.secret_key))
    return 0


def cmd_exchange_peer_add(settings: Settings, args: argparse.Namespace) -> int:
    from eoffice import exchange  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow() as uow:
            peer = await exchange.add_peer(uow, agency_code=args.agency, organ_id=args.organ, name=args.name,
                                           base_url=args.url, public_key=args.key, clerk=args.clerk)
            await uow.commit()
        print(f"Đã đăng ký cơ quan liên thông «{peer.name}» ({peer.organ_id}) tại {peer.base_url}.")
        return 0

    return asyncio.run(_with_db(settings, run))


def cmd_exchange_peer_list(settings: Settings, _args: argparse.Namespace) -> int:
    from eoffice import exchange  # lazy: a command loads only what it uses

    async def run(db: Database) -> int:
        async with db.uow(readonly=True) as uow:
            rows = await exchange.peers(uow)
        for peer, agency in rows:
            print(f"{agency}\t{peer.organ_id}\t{peer.name}\t{peer.base_url}\t{peer.public_key}")
        return 0

    return asyncio.run(_with_db(settings, run))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eoffice", description="Văn phòng điện tử và phòng họp không giấy.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="chạy máy chủ web")
    s.add_argument("--host", default=os.environ.get("EOFFICE_HOST", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("EOFFICE_PORT", "8000")))
    s.add_argument("--log-level", default="info")
    s.add_argument("--migrate", action="store_true",
                   help="chạy `eoffice migrate` (có khóa) trước khi phục vụ; mặc định chỉ kiểm tra lược đồ")
    s.add_argument("--workers", type=int, default=int(os.environ.get("EOFFICE_WORKERS", "1")),
                   help="số tiến trình phục vụ trên cùng cổng (cần EOFFICE_BROKER_URL=redis://...)")
    s.add_argument("--no-migrate", action="store_true", help=argparse.SUPPRESS)  # the old default's opt-out
    s.add_argument("--proxy-headers", action="store_true", help="tin X-Forwarded-For từ reverse proxy")
    s.add_argument("--trusted-proxies", metavar="ĐỊA_CHỈ", default=os.environ.get("EOFFICE_TRUSTED_PROXIES", ""),
                   help="địa chỉ reverse proxy (cách nhau bởi dấu phẩy) được tin X-Forwarded-For/-Proto")
    s.add_argument("--no-ws-compression", action="store_true",
                   help="không nén WebSocket (permessage-deflate): tốn băng thông Wi-Fi hơn, "
                        "máy tính bảng đỡ phải giải nén (máy chủ chỉ nén mỗi sự kiện một lần)")
    s.add_argument("--drain-delay", type=float, metavar="GIÂY",
                   help="sau SIGTERM: /readyz trả 503 trong chừng ấy giây trước khi ngừng nhận kết nối "
                        "(mặc định EOFFICE_DRAIN_DELAY, 5)")
    s.add_argument("--drain-grace", type=float, metavar="GIÂY",
                   help="thời gian chờ các yêu cầu đang chạy xong khi dừng (mặc định EOFFICE_DRAIN_GRACE, 30)")
    s.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="cập nhật lược đồ cơ sở dữ liệu").set_defaults(func=cmd_migrate)
    sub.add_parser("demo", help="nạp dữ liệu mẫu (khi cơ sở dữ liệu còn trống)").set_defaults(func=cmd_demo)

    user = sub.add_parser("user", help="quản lý tài khoản").add_subparsers(dest="user_command", required=True)
    ua = user.add_parser("add", help="tạo tài khoản")
    ua.add_argument("username")
    ua.add_argument("--name", required=True, help="họ và tên")
    ua.add_argument("--role", action="append", choices=["admin", "clerk", "leader", "specialist"])
    ua.add_argument("--unit", help="mã đơn vị, ví dụ VP")
    ua.add_argument("--title", help="chức vụ")
    ua.add_argument("--password", help="mật khẩu (nếu bỏ trống sẽ hỏi)")
    ua.add_argument("--password-stdin", action="store_true", help="đọc mật khẩu từ đầu vào chuẩn")
    ua.set_defaults(func=cmd_user_add)
    up = user.add_parser("passwd", help="đặt mật khẩu mới (thu hồi mọi phiên và mã truy cập cũ)")
    up.add_argument("username")
    up.add_argument("--password-stdin", action="store_true", help="đọc mật khẩu từ đầu vào chuẩn")
    up.set_defaults(func=cmd_user_passwd)
    for name, text in (("deactivate", "khóa tài khoản: dừng ngay mọi phiên, kết nối và mã truy cập"),
                       ("activate", "mở khóa tài khoản")):
        ud = user.add_parser(name, help=text)
        ud.add_argument("username")
        ud.set_defaults(func=cmd_user_active)
    user.add_parser("list", help="danh sách tài khoản").set_defaults(func=cmd_user_list)
    tfr = user.add_parser("two-factor-reset", help="đặt lại xác thực hai lớp (mất điện thoại)")
    tfr.add_argument("username")
    tfr.set_defaults(func=cmd_user_two_factor_reset)
    tfo = user.add_parser("two-factor-roles", help="xem hoặc đặt các vai trò bắt buộc xác thực hai lớp")
    tfo.add_argument("--role", action="append", choices=["", "admin", "clerk", "leader", "specialist"],
                     help="lặp lại cho mỗi vai trò; --role '' để bỏ hết; không có --role: chỉ xem")
    tfo.set_defaults(func=cmd_user_two_factor_roles)

    org = sub.add_parser("org", help="cơ cấu tổ chức").add_subparsers(dest="org_command", required=True)
    oi = org.add_parser("import", help="nhập đơn vị và tài khoản từ tệp CSV/XLSX (xem README)")
    oi.add_argument("files", nargs="+", metavar="FILE", help="tệp .csv hoặc .xlsx")
    oi.add_argument("--dry-run", action="store_true", help="chỉ in những gì sẽ thay đổi, không ghi gì")
    oi.add_argument("--deactivate-missing", action="store_true",
                    help="khóa tài khoản không có trong tệp (trừ tài khoản quản trị)")
    oi.add_argument("-v", "--verbose", action="store_true", help="in từng thay đổi")
    oi.set_defaults(func=cmd_org_import)

    dsub = sub.add_parser("directory", help="thư mục LDAP / Active Directory").add_subparsers(
        dest="directory_command", required=True)
    ds = dsub.add_parser("sync", help="đồng bộ đơn vị và tài khoản từ thư mục LDAP ngay (máy chủ cũng tự làm định kỳ)")
    ds.add_argument("--dry-run", action="store_true", help="chỉ in những gì sẽ thay đổi, không ghi gì")
    ds.add_argument("-v", "--verbose", action="store_true", help="in từng thay đổi")
    ds.set_defaults(func=cmd_directory_sync)

    token = sub.add_parser("token", help="mã truy cập API").add_subparsers(dest="token_command", required=True)
    tc = token.add_parser("create", help="tạo mã truy cập API cho một tài khoản")
    tc.add_argument("username")
    tc.add_argument("--name", help="ghi chú mục đích")
    tc.add_argument("--scope", choices=["full", "read"], default="full", help="read: chỉ đọc (GET/HEAD)")
    tc.add_argument("--expires-days", type=int, metavar="N", help="hết hạn sau N ngày (mặc định: không hết hạn)")
    tc.set_defaults(func=cmd_token_create)
    tl = token.add_parser("list", help="liệt kê mã truy cập của một tài khoản")
    tl.add_argument("username")
    tl.set_defaults(func=cmd_token_list)
    tr = token.add_parser("revoke", help="thu hồi một mã truy cập (theo số hiệu trong «token list»)")
    tr.add_argument("token_id", type=int, metavar="ID")
    tr.set_defaults(func=cmd_token_revoke)

    dg = sub.add_parser("digest", help="gửi nhắc việc quá hạn, sắp đến hạn (chạy hằng ngày)")
    dg.add_argument("--date", help="ngày tính hạn, YYYY-MM-DD (mặc định hôm nay)")
    dg.add_argument("--force", action="store_true", help="gửi lại dù ngày này đã được gửi")
    dg.set_defaults(func=cmd_digest)

    upl = sub.add_parser("uploads", help="tệp tải lên").add_subparsers(dest="uploads_command", required=True)
    uc = upl.add_parser("clean", help="xóa tệp tải lên chưa đính kèm vào đâu sau một thời gian")
    uc.add_argument("--hours", type=float, help="giữ bao nhiêu giờ (mặc định EOFFICE_UPLOAD_KEEP_HOURS, 24)")
    uc.set_defaults(func=cmd_uploads_clean)

    aud = sub.add_parser("audit", help="nhật ký hệ thống").add_subparsers(dest="audit_command", required=True)
    av = aud.add_parser("verify", help="kiểm tra chuỗi băm (có khóa) của nhật ký")
    av.add_argument("--anchor", metavar="FILE", help="tệp neo đã xuất: mục neo phải còn nguyên trong nhật ký")
    av.set_defaults(func=cmd_audit_verify)
    an = aud.add_parser("anchor", help="xuất đầu chuỗi nhật ký (số, mã băm, thời điểm) để lưu ở nơi khác")
    an.add_argument("-o", "--output", metavar="FILE", help="ghi vào tệp (mặc định: in ra màn hình)")
    an.set_defaults(func=cmd_audit_anchor)

    jb = sub.add_parser("jobs", help="tác vụ nền bị lỗi").add_subparsers(dest="jobs_command", required=True)
    jb.add_parser("list", help="tác vụ nền bị lỗi hoặc đang chờ thử lại (trích xuất, chuyển đổi, OCR, thư)"
                  ).set_defaults(func=cmd_jobs_list)
    jr = jb.add_parser("retry", help="chạy lại một tác vụ (mã trong «jobs list») hoặc tất cả (--all)")
    jr.add_argument("job", nargs="?", metavar="MÃ", help="ví dụ ingest-12 hoặc mail-5")
    jr.add_argument("--all", action="store_true", help="chạy lại mọi tác vụ trong danh sách")
    jr.set_defaults(func=cmd_jobs_retry)

    bk = sub.add_parser("backup", help="sao lưu cơ sở dữ liệu và tệp lưu trữ (khi máy chủ đang chạy)")
    bk.add_argument("target", metavar="TỆP_HOẶC_THƯ_MỤC",
                    help="tệp .tar sẽ tạo, hoặc thư mục để đặt eoffice-backup-<thời điểm>.tar")
    bk.add_argument("--include-keys", action="store_true",
                    help="kèm khóa bí mật của máy chủ (khóa nhật ký, khóa phiếu kín) -- mặc định KHÔNG kèm")
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="khôi phục một bản sao lưu vào cơ sở dữ liệu và kho tệp trống")
    rs.add_argument("archive", metavar="TỆP_SAO_LƯU")
    rs.add_argument("--force", action="store_true",
                    help="khôi phục cả khi nơi nhận đã có dữ liệu: XÓA cơ sở dữ liệu hiện có")
    rs.add_argument("--install-keys", action="store_true",
                    help="bản sao lưu có khóa bí mật (--include-keys): đặt nó làm khóa của máy chủ "
                         "(tệp secret_key trong EOFFICE_KEY_DIR; khóa cũ được giữ lại bên cạnh)")
    rs.set_defaults(func=cmd_restore)
    rc = sub.add_parser("restore-check", help="thử khôi phục vào nơi tạm và kiểm tra bản sao lưu")
    rc.add_argument("archive", metavar="TỆP_SAO_LƯU")
    rc.add_argument("--scratch-db", metavar="URL",
                    help="bản sao lưu PostgreSQL: một cơ sở dữ liệu trống để thử (bị xóa trắng sau khi kiểm tra)")
    rc.set_defaults(func=cmd_restore_check)

    ed = sub.add_parser("edxml", help="trao đổi văn bản điện tử edXML").add_subparsers(dest="edxml_command",
                                                                                         required=True)
    ei = ed.add_parser("import", help="tiếp nhận gói tin edXML (văn bản, thu hồi, thay thế, trạng thái)")
    ei.add_argument("files", nargs="+", metavar="FILE")
    ei.add_argument("--as", dest="as_user", help="tài khoản văn thư tiếp nhận (mặc định EOFFICE_EDXML_USER)")
    ei.set_defaults(func=cmd_edxml_import)
    ee = ed.add_parser("export", help="xuất văn bản đi đã phát hành thành gói tin edXML (PDF đã ký số)")
    ee.add_argument("doc_id", type=int, metavar="DOC_ID")
    ee.add_argument("-o", "--output", required=True, metavar="FILE")
    ee.add_argument("--as", dest="as_user", help="tài khoản văn thư (mặc định EOFFICE_EDXML_USER)")
    ee.set_defaults(func=cmd_edxml_export)

    ex = sub.add_parser("exchange", help="liên thông văn bản với máy chủ của cơ quan khác").add_subparsers(
        dest="exchange_command", required=True)
    ex.add_parser("key", help="in khóa công khai (Ed25519) của máy chủ này để gửi cho quản trị viên bên kia"
                  ).set_defaults(func=cmd_exchange_key)
    peer = ex.add_parser("peer", help="cơ quan liên thông").add_subparsers(dest="peer_command", required=True)
    pa = peer.add_parser("add", help="đăng ký (hoặc cập nhật) một cơ quan ở máy chủ khác")
    pa.add_argument("--agency", required=True, metavar="MÃ", help="mã cơ quan của mình trao đổi với cơ quan đó")
    pa.add_argument("--organ", required=True, metavar="MÃ_ĐỊNH_DANH", help="mã định danh của cơ quan bên kia")
    pa.add_argument("--name", required=True, help="tên cơ quan bên kia")
    pa.add_argument("--url", required=True, help="địa chỉ máy chủ bên kia, ví dụ https://vpdt.dongtrieu.gov.vn")
    pa.add_argument("--key", required=True, help="khóa công khai do «eoffice exchange key» bên kia in ra")
    pa.add_argument("--clerk", required=True, metavar="TÊN", help="tài khoản văn thư tiếp nhận gói tin từ cơ quan đó")
    pa.set_defaults(func=cmd_exchange_peer_add)
    peer.add_parser("list", help="liệt kê cơ quan liên thông").set_defaults(func=cmd_exchange_peer_list)
    return p


def main(argv: list[str] | None = None) -> int:
    from storage.errors import AppError  # lazy: a command loads only what it uses

    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        return int(args.func(settings, args))
    except AppError as exc:
        print(f"Lỗi: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())


__all__: list[Any] = ["main"]
