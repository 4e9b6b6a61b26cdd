"""Document lists at a million documents (PostgreSQL): the queries of the inbox and document pages.

    .venv/bin/python bench/lists.py --reuse DB [--runs 30]

Reuses a database kept by ``bench/search.py --keep`` (1M documents, a clerk who sees ~90% of them,
a specialist granted 1%) and times ``eoffice.documents.list_documents`` as the pages call it: the
inbox's newest incoming documents (first page, page 50), the clerk's "registered, to submit" list
with its count, the home page's count, and the API's list with its total. Baseline in the same
run: a bare ``SELECT * FROM documents ORDER BY id DESC LIMIT 50`` (no access rule, no count).
Lists go through the reader keys of the search vector, bucket by bucket (``*.order_by``: the same
pages with a plain ORDER BY created_at over ``access.visible``, for comparison).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from typing import Any

from sqlalchemy import text

from eoffice import documents
from eoffice.org import User
from eoffice.schema.documents import Status
from storage.db import Database

CASES: dict[str, dict[str, Any]] = {  # what the pages ask for (web/routes/office_pages.py, documents.py)
    "inbox_recent": dict(direction="in", limit=21, with_total=False),
    "inbox_page50": dict(direction="in", limit=21, offset=49 * 20, with_total=False),
    "to_submit": dict(direction="in", status=Status.REGISTERED, limit=100, with_total=False),
    "home_count": dict(direction="in", status=Status.REGISTERED, limit=1, max_total=999),
    "api_list": dict(limit=50),
}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def timed(db: Database, runs: int, fn: Any) -> list[float]:
    out = []
    for _ in range(runs):
        async with db.uow() as uow:
            t = time.perf_counter()
            await fn(uow)
            out.append((time.perf_counter() - t) * 1000)
    return out


async def main_async(args: argparse.Namespace) -> None:
    url = args.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{args.reuse}"
    db = Database(url)
    async with db.uow() as uow:
        n = await uow.session.scalar(text("SELECT count(*) FROM documents"))
        users = {u: await uow.session.scalar(text("SELECT id FROM users WHERE username = :u"), {"u": u})
                 for u in ("vanthu", "chuyenvien")}
        people = {"clerk": await uow.session.get(User, users["vanthu"]),
                  "specialist": await uow.session.get(User, users["chuyenvien"])}

    async def baseline(uow: Any) -> None:
        (await uow.session.execute(text("SELECT * FROM documents ORDER BY id DESC LIMIT 50"))).all()

    result: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    for rnd in range(2):  # the first round warms the caches and is not kept
        base = await timed(db, args.runs, baseline)
        result["baseline"] = {"p50_ms": round(pct(base, 50), 2), "p95_ms": round(pct(base, 95), 2)}
        for (who, user), rounds in itertools.product(people.items(), (True, False)):
            documents.PG_LIST_ROUNDS = rounds
            for case, kw in CASES.items():
                if not rounds and "page" not in case and "recent" not in case:
                    continue  # the plain ORDER BY path: only the pages, for comparison
                if case in ("to_submit", "home_count") and who != "clerk":
                    continue
                got: dict[str, Any] = {}

                async def call(uow: Any, user: Any = user, kw: dict[str, Any] = kw, got: dict[str, Any] = got) -> None:
                    rows, total = await documents.list_documents(uow, user, **kw)
                    got["rows"], got["total"] = len(rows), total

                ts = await timed(db, args.runs if rnd else 2, call)
                label = f"{who}.{case}" + ("" if rounds else ".order_by")
                result[label] = {"p50_ms": round(pct(ts, 50), 2), "p95_ms": round(pct(ts, 95), 2),
                                           "rows": got["rows"], "total": got["total"]}
    documents.PG_LIST_ROUNDS = True
    loadavg = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    await db.dispose()
    b = max(result["baseline"]["p95_ms"], 0.01)
    print(f"{n} documents; {args.runs} runs a case; load average (1 min) {loadavg[0]} before, {loadavg[1]} after; "
          f"{os.cpu_count()} CPUs")
    for label, r in result.items():
        ratio = f"  p95/baseline={r['p95_ms'] / b:.1f}" if label != "baseline" else ""
        print(f"  {label:26s} " + "  ".join(f"{k}={v}" for k, v in r.items()) + ratio)
    worst = max(r["p95_ms"] for k, r in result.items() if k != "baseline" and not k.endswith(".order_by"))
    print(json.dumps({"bench": "lists", "documents": n, "runs": args.runs, **result, "worst_p95_ms": worst,
                      "ratio_worst_p95": round(worst / b, 1), "loadavg": loadavg}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reuse", metavar="DATABASE", required=True, help="a database kept by bench/search.py --keep")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
