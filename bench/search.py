"""Full-text search on PostgreSQL over generated Vietnamese documents: p50/p95 per query.

    .venv/bin/python bench/search.py [--quick] [--keep | --reuse DB] [--admin postgresql://postgres@127.0.0.1:5432/postgres]

Creates a fresh database, migrates it, loads 1,000,000 documents (100,000 with --quick) with
their folded search vectors and access grants (10% confidential), then times
``eoffice.search.search`` (ranked, access-filtered, through the ORM) as a clerk (every ordinary
document of the agency plus what they registered) and as a specialist (1% of the documents,
granted). Baseline in the same process: the bare tsquery match with LIMIT 20, no ranking and no
access filter. Also a date range issued 18 to 12 months back, with the year/month lexemes and
without them (``*_dated_walk``: every newer bucket walked, as before), checking the hits are the
same. Target: search p95 < 50 ms at 1M. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import time
import uuid

import asyncpg

from eoffice import access, identity, search
from eoffice.org import Role, Unit, UnitKind
from eoffice.textfold import fold, notation_key
from storage.db import Database
from storage.migrate import migrate

TOPICS = ["triển khai chính quyền điện tử", "chuyển đổi số cấp xã", "cải cách hành chính", "phòng chống thiên tai",
          "xây dựng nông thôn mới", "quản lý đất đai", "an toàn thông tin mạng", "thu ngân sách nhà nước",
          "phòng cháy chữa cháy", "bảo vệ môi trường", "giải quyết khiếu nại tố cáo", "tuyển dụng công chức",
          "đầu tư công trung hạn", "phát triển du lịch Hạ Long", "y tế dự phòng", "giáo dục mầm non",
          "chương trình mục tiêu quốc gia", "kiểm tra thuế doanh nghiệp", "quy hoạch đô thị Đông Triều",
          "ứng dụng công nghệ thông tin"]
KINDS = [("cong_van", "Công văn về việc"), ("ke_hoach", "Kế hoạch"), ("bao_cao", "Báo cáo"),
         ("quyet_dinh", "Quyết định"), ("thong_bao", "Thông báo"), ("to_trinh", "Tờ trình")]
SENDERS = ["Ủy ban nhân dân thị xã Đông Triều", "Sở Thông tin và Truyền thông", "Sở Nội vụ", "Sở Tài chính",
           "Ủy ban nhân dân huyện Vân Đồn", "Bộ Thông tin và Truyền thông", "Văn phòng Chính phủ"]
FILLER = ("các cơ quan đơn vị địa phương tổ chức thực hiện nghiêm túc kịp thời hiệu quả báo cáo kết quả về "
          "Ủy ban nhân dân tỉnh trước ngày quy định đề nghị phối hợp rà soát tổng hợp tham mưu").split()


DATED_QUERIES = 40  # with a date range far back (the walk without date lexemes takes ~0.5 s each)


def queries(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        words = rng.choice(TOPICS).split()
        k = rng.choice([1, 2, 3])
        i = rng.randrange(0, max(1, len(words) - k + 1))
        q = " ".join(words[i:i + k])
        out.append(fold(q) if rng.random() < 0.5 else q)
    return out


async def load(url: str, n: int, seed: int = 7) -> tuple[int, int]:
    db = Database(url)
    async with db.uow() as uow:
        agency = Unit(code="UBND", name="Ủy ban nhân dân tỉnh Quảng Ninh", kind=UnitKind.PROVINCE, is_agency=True)
        uow.session.add(agency)
        await uow.session.flush()
        clerk = await identity.create_user(uow, None, username="vanthu", full_name="Nguyễn Thị Lan",
                                           password="Bench@2026", roles=[Role.CLERK], unit_id=agency.id)
        spec = await identity.create_user(uow, None, username="chuyenvien", full_name="Phạm Thu Hà",
                                          password="Bench@2026", roles=[Role.SPECIALIST], unit_id=agency.id)
        await uow.commit()
        agency_id, clerk_id, spec_id = agency.id, clerk.id, spec.id
    await db.dispose()
    rng = random.Random(seed)
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    now = dt.datetime.now(dt.UTC)
    # rows go in through COPY into a staging table and one INSERT .. SELECT per batch that builds the
    # vectors (no UPDATE: the table stays packed in id order, as a live table appended to is); the GIN
    # index is built once at the end, much faster than entry by entry
    await conn.execute("DROP INDEX ix_documents_search_vector")
    await conn.execute("CREATE TEMP TABLE stage (LIKE documents INCLUDING DEFAULTS)")
    await conn.execute("ALTER TABLE stage ADD COLUMN body text, ADD COLUMN meta text[]")
    cols = ["id", "direction", "agency_id", "number", "year", "status", "doc_type", "notation", "notation_key",
            "sender", "sender_key", "date_issued", "received_at", "summary", "signer", "urgency", "confidentiality",
            "page_count", "recipients", "has_scanned_pages", "created_by", "created_at", "updated_at"]
    batch, t0 = 50_000, time.perf_counter()
    for start in range(1, n + 1, batch):
        docs, grants = [], []
        for i in range(start, min(n, start + batch - 1) + 1):
            kind, prefix = rng.choice(KINDS)
            topic = rng.choice(TOPICS)
            sender = rng.choice(SENDERS)
            notation = f"{rng.randint(1, 9999)}/UBND-{rng.choice(['VX', 'KT', 'NC', 'TH'])}"
            summary = f"{prefix} {topic} năm {rng.choice([2024, 2025, 2026])}"
            level = "mat" if rng.random() < 0.1 else "thuong"
            at = now - dt.timedelta(minutes=n - i)
            granted: list[tuple[int | None, int | None]] = [(clerk_id, None)]
            grants.append((i, clerk_id, "registered", at))
            if rng.random() < 0.01:
                granted.append((spec_id, None))
                grants.append((i, spec_id, "assigned", at))
            keys = access.reader_keys(access.doc_facts(agency_id, level, i, "registered", granted))
            docs.append((i, "in", agency_id, i, at.year, "registered", kind, notation, notation_key(notation), sender,
                         fold(sender), at.date(), at, summary, "", "thuong", level, 2, "[]", False, clerk_id, at, at,
                         search.index_text(notation, sender, summary, " ".join(rng.sample(FILLER, 12))),
                         search.meta_lexemes(i, keys, at.date())))
        await conn.execute("TRUNCATE stage")
        await conn.copy_records_to_table("stage", records=docs, columns=[*cols, "body", "meta"])
        await conn.execute(f"INSERT INTO documents ({', '.join(cols)}, search_vector) SELECT {', '.join(cols)}, "
                           "to_tsvector('simple', body) || array_to_tsvector(meta) FROM stage ORDER BY id")
        await conn.copy_records_to_table("document_grants", records=grants,
                                         columns=["document_id", "user_id", "reason", "created_at"])
        done = min(n, start + batch - 1)
        print(f"  loaded {done} documents ({done / (time.perf_counter() - t0):.0f}/s)", flush=True)
    print("  building the GIN index ...", flush=True)
    await conn.execute("SET maintenance_work_mem = '512MB'")
    await conn.execute("CREATE INDEX ix_documents_search_vector ON documents USING gin (search_vector)")
    await conn.execute("SELECT setval(pg_get_serial_sequence('documents', 'id'), $1)", n)
    await conn.execute("VACUUM ANALYZE documents")
    await conn.execute("VACUUM ANALYZE document_grants")
    await conn.close()
    return clerk_id, spec_id


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def measure(url: str, qs: list[str], clerk_id: int, spec_id: int) -> dict[str, dict[str, float]]:
    from sqlalchemy import text

    from eoffice.org import User

    db = Database(url)
    out: dict[str, dict[str, float]] = {}
    async with db.uow() as uow:
        users = {"clerk": await uow.session.get(User, clerk_id), "specialist": await uow.session.get(User, spec_id)}
    for label, user in users.items():
        times, hits = [], []
        for q in qs:
            async with db.uow() as uow:
                t = time.perf_counter()
                res = await search.search(uow, user, q)  # type: ignore[arg-type]
                times.append((time.perf_counter() - t) * 1000)
                hits.append(len(res))
        out[label] = {"p50_ms": round(pct(times, 50), 2), "p95_ms": round(pct(times, 95), 2),
                      "max_ms": round(max(times), 2), "mean_hits": round(statistics.mean(hits), 1)}
        # issued between 18 and 12 months ago: through the year/month lexemes, and without them
        # (the rounds walk every newer bucket: how search was before); same_hits counts the queries
        # with the very same hits (a common word ranks the newest ~1000 matches of the range either
        # way, but the rounds that gather them may end at different ids)
        today = dt.date.today()
        dated = search.Filters(date_from=today - dt.timedelta(days=540), date_to=today - dt.timedelta(days=365))
        got: dict[bool, list[list[int]]] = {}
        for lexemes in (True, False):
            search.DATE_LEXEMES = lexemes
            times, got[lexemes] = [], []
            for q in ["", *qs[:DATED_QUERIES - 1]]:
                async with db.uow() as uow:
                    t = time.perf_counter()
                    res = await search.search(uow, user, q, dated)  # type: ignore[arg-type]
                    times.append((time.perf_counter() - t) * 1000)
                    got[lexemes].append([h.document.id for h in res])
            out[f"{label}_dated" if lexemes else f"{label}_dated_walk"] = {
                "p50_ms": round(pct(times, 50), 2), "p95_ms": round(pct(times, 95), 2), "max_ms": round(max(times), 2),
                "mean_hits": round(statistics.mean(len(g) for g in got[lexemes]), 1)}
        search.DATE_LEXEMES = True
        out[f"{label}_dated"]["same_hits"] = sum(a == b for a, b in zip(got[True], got[False], strict=True))
    times = []
    for q in qs:
        async with db.uow() as uow:
            t = time.perf_counter()
            await uow.session.execute(text("SELECT id FROM documents WHERE search_vector @@ to_tsquery('simple', :q) "
                                           "LIMIT 20"), {"q": " & ".join(search.words(q))})
            times.append((time.perf_counter() - t) * 1000)
    out["baseline"] = {"p50_ms": round(pct(times, 50), 2), "p95_ms": round(pct(times, 95), 2)}
    await db.dispose()
    return out


async def main_async(args: argparse.Namespace) -> None:
    n = 100_000 if args.quick else 1_000_000
    name = args.reuse or f"eo_bench_search_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(args.admin)
    url = args.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    load_s = 0.0
    try:
        if args.reuse:
            conn = await asyncpg.connect(url.replace("+asyncpg", ""))
            n = await conn.fetchval("SELECT count(*) FROM documents")
            clerk_id, spec_id = [await conn.fetchval("SELECT id FROM users WHERE username = $1", u)
                                 for u in ("vanthu", "chuyenvien")]
            await conn.close()
        else:
            await admin.execute(f'CREATE DATABASE "{name}"')
            await asyncio.to_thread(migrate, url)
            t = time.perf_counter()
            clerk_id, spec_id = await load(url, n)
            load_s = time.perf_counter() - t
        qs = queries(random.Random(11), args.queries)
        await measure(url, qs[:10], clerk_id, spec_id)  # warm-up
        load_before = os.getloadavg()[0]
        result = await measure(url, qs, clerk_id, spec_id)
        loadavg = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    finally:
        if args.keep or args.reuse:
            print(f"database kept: {name} (--reuse {name} measures it again)")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    p95 = max(result[k]["p95_ms"] for k in ("clerk", "specialist", "clerk_dated", "specialist_dated"))
    print(f"{n} documents" + (f" loaded in {load_s:.0f} s" if load_s else "") + f"; {len(qs)} queries per user; "
          f"load average (1 min) {loadavg[0]} before, {loadavg[1]} after; {os.cpu_count()} CPUs")
    base = max(result["baseline"]["p95_ms"], 0.01)
    for label, r in result.items():
        ratio = f"  p95/baseline p95={r['p95_ms'] / base:.1f}" if label != "baseline" else ""
        print(f"  {label:10s} " + "  ".join(f"{k}={v}" for k, v in r.items()) + ratio)
    print(f"search p95 {p95} ms (target < 50 ms at 1M); ratio to baseline p95 {p95 / base:.1f}")
    print(json.dumps({"bench": "search", "documents": n, "queries": len(qs), **result, "p95_ms": p95,
                      "ratio_p95": round(p95 / base, 2), "loadavg": loadavg, "target_ms": 50, "ok": p95 < 50}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="100k documents instead of 1M")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", action="store_true", help="keep the generated database")
    ap.add_argument("--reuse", metavar="DATABASE", help="measure a database kept by --keep, without loading")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
