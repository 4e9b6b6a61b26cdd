"""A poll's result outside the room: the CSV export, and the text of the results in the minutes."""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy import select

from eoffice import audit, spreadsheet
from eoffice.org import User
from meetings import voting_rules as vr
from meetings.schema import Poll
from meetings.voting.views import iso, load_poll, results_visible, rule_label, voters_view
from meetings.voting_rules import State
from storage.db import UnitOfWork
from storage.errors import Forbidden


def choice_label(poll: Poll, choice: dict[str, Any] | None) -> str:
    if not choice:
        return ""
    if vr.is_abstain(choice):
        return "Không biểu quyết"
    if "v" in choice:
        return vr.YES_NO_LABELS[choice["v"]]
    if "r" in choice:
        return " > ".join(poll.options[k - 1] for k in choice["r"])
    return "; ".join(poll.options[k - 1] for k in choice.get("o", []))


def headline_of(result: dict[str, Any]) -> str:
    """The stored headline (what the rule was and whether it passed); results counted before headlines
    existed get the bare verdict."""
    return str(result.get("headline") or ("Được thông qua" if result.get("passed") else "Không được thông qua"))


def _result_lines(poll: Poll) -> list[tuple[str, int]]:
    r = poll.result or {}
    counts = r.get("counts", {})
    if poll.method in (vr.Method.YES_NO, vr.Method.YES_NO_ABSTAIN):
        return [(vr.YES_NO_LABELS[k], int(v)) for k, v in counts.items()]
    lines = [(poll.options[int(k) - 1], int(v)) for k, v in counts.items()]
    if r.get("abstain"):
        lines.append(("Không biểu quyết", int(r["abstain"])))
    return lines


async def export_csv(uow: UnitOfWork, user: User, poll_id: int) -> tuple[str, str]:
    """(file name, CSV text): the poll, its result and, for a named poll, each vote."""
    pc = await load_poll(uow, user, poll_id)
    poll = pc.poll
    if not results_visible(poll, pc.ctx.access.controller) or poll.result is None:
        raise Forbidden("Kết quả biểu quyết chưa được công bố.")
    out = io.StringIO()
    w = spreadsheet.CsvWriter(out)  # titles, names and option labels are typed by people
    r = poll.result
    w.writerow(["Biểu quyết", poll.title])
    w.writerow(["Cuộc họp", pc.meeting.title])
    w.writerow(["Hình thức", vr.METHOD_LABELS[vr.Method(poll.method)], "Phiếu kín" if poll.secret else "Công khai"])
    w.writerow(["Trạng thái", vr.STATE_LABELS[State(poll.state)]])
    w.writerow(["Số đại biểu có quyền biểu quyết có mặt", poll.eligible_count])
    w.writerow(["Số phiếu đã bỏ", poll.votes_cast])
    w.writerow(["Cách tính", vr.MAJORITY_LABELS[vr.Majority(poll.majority)], vr.BASE_LABELS[vr.Base(poll.base)],
                r.get("threshold", "")])
    w.writerow(["Điều kiện thông qua", rule_label(poll)])
    if poll.tie_rule:
        w.writerow(["Khi số phiếu ngang nhau", vr.TIE_RULE_LABELS[vr.TieRule(poll.tie_rule)]])
    w.writerow(["Kết quả", "Thông qua" if r.get("passed") else "Không thông qua", headline_of(r)])
    w.writerow(["Chi tiết", r.get("summary", "")])
    w.writerow([])
    w.writerow(["Phương án", "Số phiếu"])
    for label, value in _result_lines(poll):
        w.writerow([label, value])
    if not poll.secret:
        w.writerow([])
        w.writerow(["Đại biểu", "Ủy quyền cho", "Trọng số", "Lựa chọn", "Hình thức"])
        for v in await voters_view(uow, user, poll_id) if pc.ctx.access.controller else []:
            w.writerow([v["name"], v["holder"], v["weight"],
                        choice_label(poll, v.get("choice")) if v["voted"] else "Chưa bỏ phiếu",
                        {"tablet": "Máy tính bảng", "roll_call": "Giơ tay / điểm danh"}.get(v.get("method", ""), "")])
    await audit.record(uow, user, "poll.export", "poll", poll.id, meeting_id=poll.meeting_id)
    return f"bieu-quyet-{poll.id}.csv", "\ufeff" + out.getvalue()


async def unpublished_results(uow: UnitOfWork, meeting_id: int) -> list[str]:
    """Titles of the meeting's closed polls whose result waits for the chair to publish it."""
    polls = (await uow.session.scalars(select(Poll).where(
        Poll.meeting_id == meeting_id, Poll.state == State.CLOSED).order_by(Poll.closed_at, Poll.id))).all()
    return [p.title for p in polls if not results_visible(p, controller=False)]


async def poll_results_for_meeting(uow: UnitOfWork, meeting_id: int) -> list[dict[str, Any]]:
    """Closed and published polls of a meeting whose result every participant may see, for the minutes (the
    caller checks access to the meeting). A result the chair has not published yet (visibility "published")
    is left out, whoever reads: the minutes are one record for all, and ``minutes.approve`` waits for it."""
    polls = (await uow.session.scalars(select(Poll).where(
        Poll.meeting_id == meeting_id, Poll.state.in_([State.CLOSED, State.PUBLISHED])).order_by(Poll.closed_at,
                                                                                                  Poll.id))).all()
    out = []
    for p in polls:
        if not results_visible(p, controller=False):
            continue
        r = p.result or {}
        out.append({
            "poll_id": p.id, "item_id": p.item_id, "title": p.title, "secret": p.secret,
            "method_label": vr.METHOD_LABELS[vr.Method(p.method)], "closed_at": iso(p.closed_at),
            "eligible": p.eligible_count, "cast": p.votes_cast, "passed": bool(r.get("passed")),
            "lines": [{"label": label, "votes": v} for label, v in _result_lines(p)],
            "winners": [p.options[k - 1] for k in r.get("winners", []) if isinstance(k, int)],
            "summary": r.get("summary", ""), "threshold": r.get("threshold", ""),
            "headline": headline_of(r), "rule_label": rule_label(p),
            "text": (f"{p.title}: {r.get('summary', '')} (có {p.eligible_count} đại biểu có quyền biểu quyết, "
                     f"{p.votes_cast} đã bỏ phiếu; {'phiếu kín' if p.secret else 'biểu quyết công khai'})."),
        })
    return out

