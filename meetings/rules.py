"""Rules of the meeting room that need no I/O: states, quorum, who may do what, page widths.

Everything here is a plain function over plain values so it can be tested without a database;
the services in the other modules load rows, call these, and raise the errors.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from storage.errors import Conflict, Forbidden


class State(enum.StrEnum):
    DRAFT = "draft"  # dự thảo: only the organisers see it
    INVITED = "invited"  # đã gửi giấy mời
    IN_PROGRESS = "in_progress"  # đang họp
    ENDED = "ended"  # đã kết thúc
    ARCHIVED = "archived"  # đã lưu trữ: read only
    CANCELLED = "cancelled"  # đã hủy


STATE_LABELS = {
    State.DRAFT: "Dự thảo",
    State.INVITED: "Đã gửi giấy mời",
    State.IN_PROGRESS: "Đang họp",
    State.ENDED: "Đã kết thúc",
    State.ARCHIVED: "Đã lưu trữ",
    State.CANCELLED: "Đã hủy",
}

TRANSITIONS: dict[State, set[State]] = {
    State.DRAFT: {State.INVITED, State.CANCELLED},
    State.INVITED: {State.IN_PROGRESS, State.CANCELLED},
    State.IN_PROGRESS: {State.ENDED},
    State.ENDED: {State.ARCHIVED},
    State.ARCHIVED: set(),
    State.CANCELLED: set(),
}

# Verb used in refusals: "Không thể <verb> cuộc họp đang ở trạng thái ..."
TRANSITION_VERBS = {
    State.INVITED: "gửi giấy mời cho",
    State.IN_PROGRESS: "bắt đầu",
    State.ENDED: "kết thúc",
    State.ARCHIVED: "lưu trữ",
    State.CANCELLED: "hủy",
}


def check_transition(current: str, target: str) -> None:
    """Raise Conflict (409) when the state machine does not allow ``current -> target``."""
    cur, tgt = State(current), State(target)
    if tgt not in TRANSITIONS[cur]:
        raise Conflict(
            f"Không thể {TRANSITION_VERBS.get(tgt, 'chuyển')} cuộc họp đang ở trạng thái «{STATE_LABELS[cur]}».",
            state=cur.value, target=tgt.value,
        )


EDITABLE_STATES = {State.DRAFT, State.INVITED, State.IN_PROGRESS}  # agenda, participants, documents
LIVE_STATES = {State.IN_PROGRESS}
MINUTES_STATES = {State.IN_PROGRESS, State.ENDED}  # the secretary writes minutes while these last


def require_editable(state: str) -> None:
    if State(state) not in EDITABLE_STATES:
        raise Conflict(f"Cuộc họp «{STATE_LABELS[State(state)]}» không còn sửa được.", state=state)


def require_live(state: str) -> None:
    if State(state) not in LIVE_STATES:
        raise Conflict(f"Cuộc họp chưa diễn ra hoặc đã kết thúc (trạng thái «{STATE_LABELS[State(state)]}»).",
                       state=state)


# ---------------------------------------------------------------- quorum


class QuorumRule(enum.StrEnum):
    HALF = "half"  # quá nửa số thành viên
    TWO_THIRDS = "two_thirds"  # ít nhất hai phần ba
    THREE_QUARTERS = "three_quarters"  # ít nhất ba phần tư
    ALL = "all"  # toàn thể
    NONE = "none"  # không yêu cầu


QUORUM_LABELS = {
    QuorumRule.HALF: "Quá nửa số thành viên",
    QuorumRule.TWO_THIRDS: "Ít nhất 2/3 số thành viên",
    QuorumRule.THREE_QUARTERS: "Ít nhất 3/4 số thành viên",
    QuorumRule.ALL: "Toàn thể thành viên",
    QuorumRule.NONE: "Không yêu cầu",
}


@dataclass(frozen=True)
class Quorum:
    present: int
    entitled: int
    needed: int
    rule: str

    @property
    def met(self) -> bool:
        return self.present >= self.needed

    def public(self) -> dict[str, object]:
        return {"present": self.present, "entitled": self.entitled, "needed": self.needed, "met": self.met,
                "rule": self.rule, "label": QUORUM_LABELS[QuorumRule(self.rule)]}


def quorum_needed(entitled: int, rule: str) -> int:
    """Smallest number present that makes the quorum, integer arithmetic only."""
    r = QuorumRule(rule)
    if entitled <= 0 or r is QuorumRule.NONE:
        return 0
    if r is QuorumRule.HALF:
        return entitled // 2 + 1
    if r is QuorumRule.TWO_THIRDS:
        return -(-entitled * 2 // 3)
    if r is QuorumRule.THREE_QUARTERS:
        return -(-entitled * 3 // 4)
    return entitled


def quorum(present: int, entitled: int, rule: str) -> Quorum:
    return Quorum(present=present, entitled=entitled, needed=quorum_needed(entitled, rule), rule=str(rule))


# ---------------------------------------------------------------- access


class ParticipantRole(enum.StrEnum):
    CHAIR = "chair"  # chủ trì
    SECRETARY = "secretary"  # thư ký
    MEMBER = "member"  # thành viên (counts for quorum)
    INVITED = "invited"  # khách mời, đại biểu mời dự (does not count)


ROLE_LABELS = {
    ParticipantRole.CHAIR: "Chủ trì",
    ParticipantRole.SECRETARY: "Thư ký",
    ParticipantRole.MEMBER: "Thành viên",
    ParticipantRole.INVITED: "Khách mời",
}


class Response(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    SUBSTITUTE = "substitute"  # cử người dự thay


RESPONSE_LABELS = {
    Response.PENDING: "Chưa phản hồi",
    Response.ACCEPTED: "Tham dự",
    Response.DECLINED: "Vắng mặt",
    Response.SUBSTITUTE: "Cử người dự thay",
}


@dataclass(frozen=True)
class Seat:
    """What a rule needs to know about one participant row."""

    id: int
    user_id: int | None  # invitee account (None: a unit or a guest)
    unit_id: int | None
    substitute_id: int | None
    site_id: int | None = None
    substitute_approved: bool = False  # the chair approved the substitute, or they share the invitee's unit

    @property
    def attendee_id(self) -> int | None:
        """The account that sits in this seat: the substitute when one was sent."""
        return self.substitute_id or self.user_id


@dataclass(frozen=True)
class Access:
    """One user's standing in one meeting, computed by ``access_for``."""

    user_id: int
    state: str
    organiser: bool = False
    chair: bool = False
    secretary: bool = False
    seats: frozenset[int] = frozenset()  # participant rows this user attends (own or as substitute)
    invited: frozenset[int] = frozenset()  # participant rows naming this user (even if substituted away)
    # invitee user ids whose access to confidential items this user carries (approved substitutions only)
    represents: frozenset[int] = frozenset()
    unit_seats: frozenset[int] = frozenset()  # unit rows this user may answer for
    sites: frozenset[int] = frozenset()  # remote sites this user operates
    admin: bool = False

    @property
    def manager(self) -> bool:
        """Prepares the meeting: details, participants, agenda, documents."""
        return self.organiser or self.chair or self.secretary

    @property
    def controller(self) -> bool:
        """Runs the room: agenda navigation, floor, check-in of others, presenter."""
        return self.chair or self.secretary

    @property
    def sees_everything(self) -> bool:
        """Chair, secretary and organiser see confidential items (they prepare and minute them)."""
        return self.manager

    @property
    def participant(self) -> bool:
        return bool(self.seats or self.invited or self.unit_seats)

    @property
    def can_view(self) -> bool:
        if self.manager:
            return True
        if State(self.state) is State.DRAFT:
            return False
        return self.participant or bool(self.sites)

    def require_view(self) -> None:
        if not self.can_view:
            raise Forbidden("Bạn không tham dự cuộc họp này.")

    def require_manage(self) -> None:
        if not self.manager:
            raise Forbidden("Chỉ người tổ chức, chủ trì hoặc thư ký cuộc họp được thực hiện thao tác này.")

    def require_control(self) -> None:
        if not self.controller:
            raise Forbidden("Chỉ chủ trì hoặc thư ký cuộc họp được điều hành phiên họp.")

    def require_chair(self) -> None:
        if not self.chair:
            raise Forbidden("Chỉ người chủ trì được thực hiện thao tác này.")

    def can_see_item(self, confidential: bool, allowed_user_ids: Iterable[int]) -> bool:
        if not self.can_view:
            return False
        if not confidential or self.sees_everything:
            return True
        allowed = set(allowed_user_ids)
        return self.user_id in allowed or bool(self.represents & allowed)

    def public(self) -> dict[str, object]:
        return {"user_id": self.user_id, "organiser": self.organiser, "chair": self.chair,
                "secretary": self.secretary, "manager": self.manager, "controller": self.controller,
                "seats": sorted(self.seats), "invited": sorted(self.invited), "sites": sorted(self.sites),
                "unit_seats": sorted(self.unit_seats)}


def access_for(
    user_id: int,
    *,
    state: str,
    created_by: int | None,
    chair_id: int | None,
    secretary_id: int | None,
    seats: Iterable[Seat],
    site_operators: Iterable[tuple[int, int | None]] = (),
    user_unit_id: int | None = None,
    user_answers_for_unit: bool = False,
    admin: bool = False,
) -> Access:
    """``user_answers_for_unit``: a leader or clerk of their unit answers invitations sent to it."""
    mine, invited, represents, unit_seats = set(), set(), set(), set()
    for s in seats:
        if s.attendee_id == user_id:
            mine.add(s.id)
            if s.user_id is not None and s.user_id != user_id and s.substitute_approved:
                represents.add(s.user_id)
        if s.user_id == user_id:
            invited.add(s.id)
        if s.user_id is None and s.unit_id is not None and s.unit_id == user_unit_id and user_answers_for_unit:
            unit_seats.add(s.id)
    return Access(
        user_id=user_id, state=str(state), organiser=created_by == user_id, chair=chair_id == user_id,
        secretary=secretary_id == user_id, seats=frozenset(mine), invited=frozenset(invited),
        represents=frozenset(represents), unit_seats=frozenset(unit_seats),
        sites=frozenset(site for site, operator in site_operators if operator == user_id), admin=admin,
    )


def may_check_in(access: Access, seat: Seat) -> bool:
    """Self check-in on the tablet, by the chair or secretary, or by the operator of the seat's site."""
    if access.controller:
        return True
    if seat.attendee_id is not None and seat.attendee_id == access.user_id:
        return True
    return seat.site_id is not None and seat.site_id in access.sites


def may_respond(access: Access, seat: Seat) -> bool:
    return seat.id in access.invited or seat.id in access.unit_seats


# ---------------------------------------------------------------- speakers


class SpeakerState(enum.StrEnum):
    WAITING = "waiting"
    SPEAKING = "speaking"
    DONE = "done"
    WITHDRAWN = "withdrawn"


def reorder(current: list[int], wanted: list[int]) -> list[int]:
    """The new order of ``current`` ids: ``wanted`` first (unknown ids ignored), the rest after, in order."""
    known = set(current)
    head = [i for i in dict.fromkeys(wanted) if i in known]
    rest = [i for i in current if i not in set(head)]
    return head + rest


# ---------------------------------------------------------------- page rendering

PAGE_WIDTHS = (480, 800, 1200, 1600, 2400)


def width_bucket(requested: int) -> int:
    """The smallest bucket at least as wide as asked (the largest one for anything wider)."""
    for width in PAGE_WIDTHS:
        if requested <= width:
            return width
    return PAGE_WIDTHS[-1]


@dataclass
class Outline:
    """A snapshot of agenda order used by navigation rules."""

    item_ids: list[int] = field(default_factory=list)

    def after(self, current: int | None) -> int | None:
        if not self.item_ids:
            return None
        if current is None or current not in self.item_ids:
            return self.item_ids[0]
        i = self.item_ids.index(current)
        return self.item_ids[i + 1] if i + 1 < len(self.item_ids) else None

    def before(self, current: int | None) -> int | None:
        if current is None or current not in self.item_ids:
            return None
        i = self.item_ids.index(current)
        return self.item_ids[i - 1] if i > 0 else None
