"""Voting rules that need no I/O: ballots, eligibility, quorum, majorities, counting.

Everything here takes plain values and returns plain values; ``meetings.voting`` loads rows,
calls these, stores the outcome. The decisions, in one place:

Methods (``Method``)
    ``yes_no`` (Tán thành / Không tán thành), ``yes_no_abstain`` (+ Không biểu quyết),
    ``single`` (one option), ``multiple`` (at most ``max_choices`` options, ``seats`` winners),
    ``ranked`` (a preference order; one seat: instant runoff, several seats: STV).

Ballots as sent by a client (``choice``) and as stored (normalised)::

    "yes" | "no" | "abstain"          -> {"v": "yes"} ...         (yes_no, yes_no_abstain)
    [3] / [1, 4] / [2, 1, 3]          -> {"o": [3]} / {"r": [...]} (single, multiple / ranked)
    "abstain"                         -> {"abstain": true}          (choice methods, if allowed)

    Option keys are the integers 1..n given when the poll was created. Anything else is refused
    with ``Invalid`` and a message saying what was wrong.

Majorities (``Majority``) over a base (``Base``), integer arithmetic only:
    simple          more yes than no (the base is only reported)
    absolute        yes > base / 2
    two_thirds      yes >= 2/3 of base
    three_quarters  yes >= 3/4 of base
    Bases: ``cast`` every ballot including abstentions; ``valid`` ballots that are not
    abstentions; ``present`` the voting weight represented when the poll opened (members
    present plus the proxies they hold); ``entitled`` every voting right of the meeting.
    A base of 0 never passes. **A tie never passes**: yes == no fails a simple majority and
    exactly half fails an absolute one, unless the poll carries the chair's tie rule (below).

Presets (``PRESETS``), what the chair picks when creating a poll; each maps onto a majority + base:
    ``half_members``     "Quá nửa tổng số thành viên": absolute over entitled (not over votes cast)
    ``two_thirds_all``   "Hai phần ba tổng số đại biểu": two_thirds over entitled (the People's
                         Council's special matters)
    ``half_present``, ``simple_valid``, ``two_thirds_present``, ``three_quarters_all``: the others in use.

Tie rule (``TieRule``, yes/no polls only): ``chair`` is the working rules of the Government and of
People's Committees: when the votes for and against are equal, the side the chair voted for wins
(whatever the majority). It needs the chair's vote, so it is refused on a secret poll. If the chair
abstained or did not vote, the tie stays unresolved (not passed, and the headline says why).

Choice polls: the options with the most votes win (``seats`` of them). For any majority other
than simple, a winner must also reach the threshold over the base, counted in ballots (voters),
not in marks. A tie across the last winning place decides nothing: the tied options are
reported and ``passed`` is false (the chair re-runs the poll among them).

Ranked polls (no majority/base: their quota is built in):
    Instant runoff (one seat): a candidate with more than half of the continuing votes wins;
    otherwise the last one is eliminated and its ballots go to their next continuing preference.
    STV (several seats): Droop quota floor(valid / (seats + 1)) + 1; a candidate reaching it is
    elected; the surplus is transferred by the **Gregory method** (weighted inclusive): every
    ballot the elected candidate holds moves on at ``value * surplus / total``, in exact
    fractions (no rounding, no randomness, recount gives the same result). Largest surplus first.
    When no one reaches the quota, the lowest is eliminated; when the continuing candidates are
    no more than the seats left, they are all elected.
    Ties for elimination: **backwards tie-break** (the one with fewer votes in the latest earlier
    round where they differ), then **by lot**: the order of sha256(seed + ":" + key), where the
    seed is drawn when the poll closes and stored with the result, so a recount reproduces it.
    A tie between the last two candidates for the last seat is not broken by lot: no winner, the
    chair re-runs the poll.

Eligibility: a member present with a voting right votes for their own seat. A proxy (ủy quyền)
counts only from an absent voting member to a present voting member; a holder may carry at most
``proxy_cap`` proxies (the earliest given win, the rest are refused with a reason); proxies do
not chain. Weights are used only when the poll says so; otherwise every right weighs 1.

Quorum to open counts people (voting members present), not weights, and not proxies.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from meetings import rules as room_rules
from storage.errors import Invalid


class Method(enum.StrEnum):
    YES_NO = "yes_no"
    YES_NO_ABSTAIN = "yes_no_abstain"
    SINGLE = "single"
    MULTIPLE = "multiple"
    RANKED = "ranked"


METHOD_LABELS = {
    Method.YES_NO: "Tán thành / Không tán thành",
    Method.YES_NO_ABSTAIN: "Tán thành / Không tán thành / Không biểu quyết",
    Method.SINGLE: "Chọn một phương án",
    Method.MULTIPLE: "Chọn nhiều phương án",
    Method.RANKED: "Xếp thứ tự ưu tiên",
}

YES_NO_LABELS = {"yes": "Tán thành", "no": "Không tán thành", "abstain": "Không biểu quyết"}


class Majority(enum.StrEnum):
    SIMPLE = "simple"
    ABSOLUTE = "absolute"
    TWO_THIRDS = "two_thirds"
    THREE_QUARTERS = "three_quarters"


MAJORITY_LABELS = {
    Majority.SIMPLE: "Đa số thường (tán thành nhiều hơn không tán thành)",
    Majority.ABSOLUTE: "Quá nửa",
    Majority.TWO_THIRDS: "Ít nhất hai phần ba",
    Majority.THREE_QUARTERS: "Ít nhất ba phần tư",
}


class Base(enum.StrEnum):
    CAST = "cast"
    VALID = "valid"
    PRESENT = "present"
    ENTITLED = "entitled"


BASE_LABELS = {
    Base.CAST: "số phiếu đã bỏ",
    Base.VALID: "số phiếu hợp lệ (không tính không biểu quyết)",
    Base.PRESENT: "số đại biểu có mặt (kể cả ủy quyền)",
    Base.ENTITLED: "tổng số đại biểu có quyền biểu quyết",
}


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    majority: Majority
    base: Base
    explanation: str


PRESETS: dict[str, Preset] = {p.key: p for p in (
    Preset("half_members", "Quá nửa tổng số thành viên", Majority.ABSOLUTE, Base.ENTITLED,
           "Số tán thành phải hơn một nửa tổng số thành viên có quyền biểu quyết (kể cả người vắng mặt), "
           "không phải một nửa số phiếu đã bỏ."),
    Preset("two_thirds_all", "Hai phần ba tổng số đại biểu", Majority.TWO_THIRDS, Base.ENTITLED,
           "Số tán thành phải đạt ít nhất hai phần ba tổng số đại biểu (kể cả người vắng mặt); "
           "dùng cho các vấn đề đặc biệt của Hội đồng nhân dân."),
    Preset("half_present", "Quá nửa số đại biểu có mặt", Majority.ABSOLUTE, Base.PRESENT,
           "Số tán thành phải hơn một nửa số đại biểu có mặt khi mở biểu quyết (kể cả phiếu ủy quyền)."),
    Preset("two_thirds_present", "Hai phần ba số đại biểu có mặt", Majority.TWO_THIRDS, Base.PRESENT,
           "Số tán thành phải đạt ít nhất hai phần ba số đại biểu có mặt khi mở biểu quyết."),
    Preset("three_quarters_all", "Ba phần tư tổng số thành viên", Majority.THREE_QUARTERS, Base.ENTITLED,
           "Số tán thành phải đạt ít nhất ba phần tư tổng số thành viên có quyền biểu quyết."),
    Preset("simple_valid", "Đa số thường", Majority.SIMPLE, Base.VALID,
           "Số tán thành nhiều hơn số không tán thành (không tính phiếu không biểu quyết)."),
)}


def preset_of(majority: Majority | str, base: Base | str) -> Preset | None:
    """The named preset a majority + base is, or None (a custom combination)."""
    for p in PRESETS.values():
        if p.majority == majority and p.base == base:
            return p
    return None


class TieRule(enum.StrEnum):
    NONE = ""
    CHAIR = "chair"


TIE_RULE_LABELS = {
    TieRule.NONE: "Số phiếu ngang nhau thì không được thông qua",
    TieRule.CHAIR: "Số phiếu ngang nhau thì theo ý kiến của Chủ tọa",
}

TIE_RULE_SECRET = ("Bỏ phiếu kín không áp dụng được quy tắc «số phiếu ngang nhau thì theo ý kiến của Chủ tọa»: "
                   "phiếu kín không cho biết Chủ tọa đã biểu quyết thế nào.")


class TieOutcome(enum.StrEnum):
    NO_TIE = "no_tie"  # yes != no (or no ballots): the rule does not apply
    NOT_APPLICABLE = "not_applicable"  # no chair's tie rule on this poll, or a secret poll
    PASSED = "passed"  # tie, the chair voted for
    REJECTED = "rejected"  # tie, the chair voted against
    UNRESOLVED = "unresolved"  # tie, the chair abstained or did not vote


def resolve_tie(yes: int, no: int, *, rule: TieRule | str, secret: bool, chair_vote: str | None) -> TieOutcome:
    """The chair's tie rule: ``chair_vote`` is "yes" | "no" | "abstain" or None (did not vote)."""
    if TieRule(rule) is not TieRule.CHAIR or secret:
        return TieOutcome.NOT_APPLICABLE
    if yes != no or yes == 0:
        return TieOutcome.NO_TIE
    if chair_vote == "yes":
        return TieOutcome.PASSED
    if chair_vote == "no":
        return TieOutcome.REJECTED
    return TieOutcome.UNRESOLVED


class State(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


STATE_LABELS = {
    State.DRAFT: "Dự thảo",
    State.OPEN: "Đang biểu quyết",
    State.CLOSED: "Đã kết thúc",
    State.PUBLISHED: "Đã công bố",
    State.CANCELLED: "Đã hủy",
}


class Visibility(enum.StrEnum):
    """When everyone sees the result (the chair and secretary see it from the close)."""

    LIVE = "live"  # while voting (named polls only)
    CLOSED = "closed"  # when the poll closes
    PUBLISHED = "published"  # when the chair publishes it


MAX_OPTIONS = 50
MAX_SEATS = 20


# ---------------------------------------------------------------- the poll's settings


@dataclass(frozen=True)
class Spec:
    """What a ballot and a count need to know about a poll."""

    method: Method
    options: tuple[int, ...] = ()  # option keys, 1..n
    max_choices: int = 1
    seats: int = 1
    allow_abstain: bool = True
    majority: Majority = Majority.SIMPLE
    base: Base = Base.VALID
    tie_rule: TieRule = TieRule.NONE
    secret: bool = False

    @property
    def yes_no(self) -> bool:
        return self.method in (Method.YES_NO, Method.YES_NO_ABSTAIN)


def make_spec(*, method: str, options: Sequence[str] = (), max_choices: int | None = None, seats: int | None = None,
              allow_abstain: bool = True, majority: str = Majority.SIMPLE, base: str = Base.VALID,
              secret: bool = False, allow_change: bool = False, visibility: str = Visibility.CLOSED,
              tie_rule: str = TieRule.NONE) -> Spec:
    """Check a poll's settings when it is created; returns the spec or raises ``Invalid``."""
    try:
        m = Method(method)
    except ValueError:
        raise Invalid("Hình thức biểu quyết không hợp lệ.", field="method") from None
    try:
        maj = Majority(majority)
    except ValueError:
        raise Invalid("Cách tính đa số không hợp lệ.", field="majority") from None
    try:
        b = Base(base)
    except ValueError:
        raise Invalid("Cơ sở tính tỷ lệ không hợp lệ.", field="base") from None
    try:
        vis = Visibility(visibility)
    except ValueError:
        raise Invalid("Chế độ hiển thị kết quả không hợp lệ.", field="results_visibility") from None
    try:
        tr = TieRule(tie_rule or "")
    except ValueError:
        raise Invalid("Quy tắc khi số phiếu ngang nhau không hợp lệ.", field="tie_rule") from None
    if tr is TieRule.CHAIR and secret:
        raise Invalid(TIE_RULE_SECRET, field="tie_rule")
    if tr is TieRule.CHAIR and m not in (Method.YES_NO, Method.YES_NO_ABSTAIN):
        raise Invalid("Quy tắc «theo ý kiến của Chủ tọa» chỉ áp dụng cho biểu quyết tán thành/không tán thành.",
                      field="tie_rule")
    if secret and allow_change:
        raise Invalid("Bỏ phiếu kín không cho phép sửa phiếu: phiếu kín không gắn với người bỏ phiếu.",
                      field="allow_change")
    if secret and vis is Visibility.LIVE:
        raise Invalid("Bỏ phiếu kín không hiển thị kết quả trong khi đang bỏ phiếu.", field="results_visibility")
    if m in (Method.YES_NO, Method.YES_NO_ABSTAIN):
        if options:
            raise Invalid("Biểu quyết tán thành/không tán thành không có danh sách phương án.", field="options")
        return Spec(method=m, allow_abstain=m is Method.YES_NO_ABSTAIN, majority=maj, base=b, tie_rule=tr,
                    secret=bool(secret))
    labels = [str(o).strip() for o in options]
    if len(labels) < 2:
        raise Invalid("Cần ít nhất hai phương án.", field="options")
    if len(labels) > MAX_OPTIONS:
        raise Invalid(f"Tối đa {MAX_OPTIONS} phương án.", field="options")
    if any(not label for label in labels):
        raise Invalid("Phương án không được để trống.", field="options")
    if len({label.casefold() for label in labels}) != len(labels):
        raise Invalid("Các phương án phải khác nhau.", field="options")
    keys = tuple(range(1, len(labels) + 1))
    n_seats = 1 if seats is None else seats
    if isinstance(n_seats, bool) or not isinstance(n_seats, int) or not 1 <= n_seats < len(labels):
        raise Invalid(f"Số người/phương án được chọn phải từ 1 đến {len(labels) - 1}.", field="seats")
    if n_seats > MAX_SEATS:
        raise Invalid(f"Tối đa {MAX_SEATS} người/phương án được chọn.", field="seats")
    if m is Method.SINGLE:
        if n_seats != 1:
            raise Invalid("Chọn một phương án thì chỉ có một phương án thắng.", field="seats")
        return Spec(method=m, options=keys, allow_abstain=allow_abstain, majority=maj, base=b)
    if m is Method.MULTIPLE:
        most = n_seats if max_choices is None else max_choices
        if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= len(labels):
            raise Invalid(f"Số phương án được chọn tối đa phải từ 1 đến {len(labels)}.", field="max_choices")
        return Spec(method=m, options=keys, max_choices=most, seats=n_seats, allow_abstain=allow_abstain,
                    majority=maj, base=b)
    return Spec(method=m, options=keys, max_choices=len(labels), seats=n_seats, allow_abstain=allow_abstain,
                majority=Majority.SIMPLE, base=Base.VALID)


# ---------------------------------------------------------------- ballots


def _keys(spec: Spec, raw: Any) -> list[int]:
    if not isinstance(raw, list):
        raise Invalid("Phiếu phải là danh sách số thứ tự phương án, ví dụ [1].", field="choice")
    keys: list[int] = []
    for k in raw:
        if isinstance(k, bool) or not isinstance(k, int):
            raise Invalid("Phương án phải là số thứ tự (số nguyên).", field="choice")
        if k not in spec.options:
            raise Invalid(f"Không có phương án số {k}.", field="choice")
        keys.append(k)
    if len(set(keys)) != len(keys):
        raise Invalid("Mỗi phương án chỉ được chọn một lần.", field="choice")
    return keys


def validate_ballot(spec: Spec, raw: Any) -> dict[str, Any]:
    """The stored form of a ballot, or ``Invalid`` with a message for the voter."""
    if raw == "abstain":
        if not spec.allow_abstain:
            raise Invalid("Biểu quyết này không có lựa chọn «Không biểu quyết».", field="choice")
        return {"abstain": True} if not spec.yes_no else {"v": "abstain"}
    if spec.yes_no:
        if raw not in ("yes", "no"):
            allowed = "«yes», «no» hoặc «abstain»" if spec.allow_abstain else "«yes» hoặc «no»"
            raise Invalid(f"Phiếu không hợp lệ: chỉ nhận {allowed}.", field="choice")
        return {"v": raw}
    keys = _keys(spec, raw)
    if not keys:
        raise Invalid("Phiếu trống: hãy chọn ít nhất một phương án"
                      + (" hoặc chọn «Không biểu quyết»." if spec.allow_abstain else "."), field="choice")
    if spec.method is Method.SINGLE and len(keys) != 1:
        raise Invalid("Chỉ được chọn một phương án.", field="choice")
    if spec.method is Method.MULTIPLE and len(keys) > spec.max_choices:
        raise Invalid(f"Chỉ được chọn tối đa {spec.max_choices} phương án.", field="choice")
    if spec.method is Method.RANKED:
        return {"r": keys}
    return {"o": keys}


def is_abstain(ballot: dict[str, Any]) -> bool:
    return bool(ballot.get("abstain")) or ballot.get("v") == "abstain"


# ---------------------------------------------------------------- eligibility


@dataclass(frozen=True)
class Member:
    """One seat of the meeting as voting needs it."""

    participant_id: int
    user_id: int | None  # the account sitting in the seat (a substitute if one was sent); None: no tablet
    voting: bool
    present: bool
    weight: int = 1


@dataclass(frozen=True)
class Proxy:
    grantor: int  # participant id of the absent member
    holder: int  # participant id of the present member who votes for them
    order: int = 0  # earlier proxies win when a holder has more than the cap


@dataclass(frozen=True)
class Right:
    """One vote to cast: for ``participant_id``, by the account ``user_id`` (sitting in ``holder_id``)."""

    participant_id: int
    holder_id: int
    user_id: int | None
    weight: int
    proxy: bool


@dataclass
class Eligibility:
    rights: list[Right]
    refused: list[tuple[Proxy, str]]
    present: int  # voting members present (people)
    entitled: int  # voting members (people)
    present_weight: int  # weight that can be cast: present members and the proxies they hold
    entitled_weight: int


def eligibility(members: Iterable[Member], proxies: Iterable[Proxy], *, proxy_cap: int,
                weighted: bool) -> Eligibility:
    by_id = {m.participant_id: m for m in members}
    voters = [m for m in by_id.values() if m.voting]

    def w(m: Member) -> int:
        if not weighted:
            return 1
        if isinstance(m.weight, bool) or not isinstance(m.weight, int) or m.weight < 0:
            raise Invalid("Trọng số phiếu phải là số nguyên không âm.", field="weight")
        return m.weight

    rights = [Right(m.participant_id, m.participant_id, m.user_id, w(m), False)
              for m in sorted(voters, key=lambda m: m.participant_id) if m.present]
    refused: list[tuple[Proxy, str]] = []
    held: dict[int, int] = {}
    seen: set[int] = set()
    for p in sorted(proxies, key=lambda p: (p.order, p.grantor)):
        grantor, holder = by_id.get(p.grantor), by_id.get(p.holder)
        if grantor is None or not grantor.voting:
            refused.append((p, "Người ủy quyền không có quyền biểu quyết."))
        elif holder is None or not holder.voting:
            refused.append((p, "Người nhận ủy quyền không có quyền biểu quyết."))
        elif p.grantor == p.holder:
            refused.append((p, "Không thể tự ủy quyền cho chính mình."))
        elif p.grantor in seen:
            refused.append((p, "Người này đã ủy quyền cho người khác."))
        elif grantor.present:
            refused.append((p, "Người ủy quyền đang có mặt nên tự biểu quyết."))
        elif not holder.present:
            refused.append((p, "Người nhận ủy quyền chưa có mặt."))
        elif proxy_cap <= 0:
            refused.append((p, "Biểu quyết này không nhận ủy quyền."))
        elif held.get(p.holder, 0) >= proxy_cap:
            refused.append((p, f"Người nhận ủy quyền đã giữ đủ {proxy_cap} phiếu ủy quyền."))
        else:
            seen.add(p.grantor)
            held[p.holder] = held.get(p.holder, 0) + 1
            rights.append(Right(p.grantor, p.holder, holder.user_id, w(grantor), True))
    return Eligibility(
        rights=rights, refused=refused,
        present=sum(1 for m in voters if m.present), entitled=len(voters),
        present_weight=sum(r.weight for r in rights), entitled_weight=sum(w(m) for m in voters),
    )


def quorum_to_open(present: int, entitled: int, rule: str) -> room_rules.Quorum:
    """The meeting room's quorum rule applied to voting members (people, not weights)."""
    try:
        room_rules.QuorumRule(rule)
    except ValueError:
        raise Invalid("Quy tắc túc số không hợp lệ.", field="quorum_rule") from None
    return room_rules.quorum(present, entitled, rule)


# ---------------------------------------------------------------- majorities


def majority_reached(majority: Majority | str, yes: int | Fraction, no: int | Fraction,
                     base: int | Fraction) -> bool:
    maj = Majority(majority)
    if maj is Majority.SIMPLE:
        return yes > no
    if base <= 0:
        return False
    if maj is Majority.ABSOLUTE:
        return 2 * yes > base
    if maj is Majority.TWO_THIRDS:
        return 3 * yes >= 2 * base
    return 4 * yes >= 3 * base


def threshold_text(majority: Majority | str, base_value: int) -> str:
    maj = Majority(majority)
    if maj is Majority.SIMPLE:
        return "Số tán thành phải nhiều hơn số không tán thành"
    if maj is Majority.ABSOLUTE:
        half = f"{base_value // 2}" + (",5" if base_value % 2 else "")
        return f"Cần hơn {half} phiếu (quá nửa của {base_value})"
    if maj is Majority.TWO_THIRDS:
        return f"Cần ít nhất {-(-2 * base_value // 3)} phiếu (2/3 của {base_value})"
    return f"Cần ít nhất {-(-3 * base_value // 4)} phiếu (3/4 của {base_value})"


_BASE_PHRASE = {
    Base.CAST: ("phiếu", "số phiếu đã bỏ"),
    Base.VALID: ("phiếu", "số phiếu hợp lệ"),
    Base.PRESENT: ("thành viên", "số thành viên có mặt"),
    Base.ENTITLED: ("thành viên", "tổng số thành viên"),
}


def rule_phrase(majority: Majority | str, base: Base | str, reached: bool) -> str:
    """"quá nửa tổng số thành viên" / "chưa quá nửa tổng số thành viên" ..."""
    maj, b = Majority(majority), Base(base)
    if maj is Majority.SIMPLE:
        return "nhiều hơn số không tán thành" if reached else "không nhiều hơn số không tán thành"
    whole = _BASE_PHRASE[b][1]
    if maj is Majority.ABSOLUTE:
        return f"quá nửa {whole}" if reached else f"chưa quá nửa {whole}"
    part = "hai phần ba" if maj is Majority.TWO_THIRDS else "ba phần tư"
    return f"đạt {part} {whole}" if reached else f"chưa đạt {part} {whole}"


def headline(majority: Majority | str, base: Base | str, *, yes: int, no: int, base_value: int, passed: bool,
             tie: TieOutcome = TieOutcome.NOT_APPLICABLE) -> str:
    """What the rule was and whether the poll passed, e.g. "Được thông qua: 5/9 thành viên tán thành, quá nửa
    tổng số thành viên"; a tie decided by the chair's vote says so instead of a bare "hòa phiếu"."""
    if tie is TieOutcome.PASSED:
        return "Được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)"
    if tie is TieOutcome.REJECTED:
        return "Không được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)"
    if tie is TieOutcome.UNRESOLVED:
        return (f"Chưa phân định: số phiếu ngang nhau ({yes} tán thành, {no} không tán thành) và Chủ tọa không "
                "biểu quyết tán thành hay không tán thành, nên không áp dụng được ý kiến của Chủ tọa")
    verdict = "Được thông qua" if passed else "Không được thông qua"
    maj = Majority(majority)
    if maj is Majority.SIMPLE:
        tail = rule_phrase(maj, base, passed)
        if yes == no and yes and not passed:
            tail = "số phiếu ngang nhau"
        return f"{verdict}: {yes} tán thành, {no} không tán thành, {tail}"
    unit = _BASE_PHRASE[Base(base)][0]
    return f"{verdict}: {yes}/{base_value} {unit} tán thành, {rule_phrase(maj, base, passed)}"


def base_value(base: Base | str, *, cast: int, valid: int, present: int, entitled: int) -> int:
    b = Base(base)
    return {Base.CAST: cast, Base.VALID: valid, Base.PRESENT: present, Base.ENTITLED: entitled}[b]


# ---------------------------------------------------------------- counting


Ballot = tuple[dict[str, Any], int]  # (stored choice, weight)


@dataclass
class Result:
    method: str
    ballots: int  # number of ballots
    cast: int  # their weight
    valid: int  # weight of ballots that are not abstentions
    abstain: int
    counts: dict[str, int]  # "yes"/"no"/"abstain" or option key as str -> weight
    base: str
    base_value: int
    majority: str
    passed: bool
    winners: list[int] = field(default_factory=list)
    tie: list[int | str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    quota: str | None = None
    tie_breaks: list[str] = field(default_factory=list)
    seed: str = ""
    summary: str = ""
    headline: str = ""
    tie_rule: str = ""
    tie_outcome: str = ""

    def public(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def count(spec: Spec, ballots: Iterable[Ballot], *, present: int, entitled: int, seed: str = "",
          chair_vote: str | None = None) -> Result:
    """Count the ballots of a closed poll; ``present``/``entitled`` are weights (see ``Eligibility``);
    ``chair_vote`` ("yes" | "no" | "abstain" | None) is the chair's own ballot of a named poll (tie rule)."""
    items = list(ballots)
    n = len(items)
    cast = sum(w for _b, w in items)
    abstain = sum(w for b, w in items if is_abstain(b))
    valid = cast - abstain
    bv = base_value(spec.base, cast=cast, valid=valid, present=present, entitled=entitled)
    common: dict[str, Any] = dict(method=spec.method.value, ballots=n, cast=cast, valid=valid, abstain=abstain,
                                  base=spec.base.value, base_value=bv, majority=spec.majority.value, seed=seed)
    if spec.yes_no:
        yes = sum(w for b, w in items if b.get("v") == "yes")
        no = sum(w for b, w in items if b.get("v") == "no")
        counts = {"yes": yes, "no": no}
        if spec.method is Method.YES_NO_ABSTAIN:
            counts["abstain"] = abstain
        passed = majority_reached(spec.majority, yes, no, bv) and yes > no
        tie: list[int | str] = ["yes", "no"] if yes == no and n else []
        outcome = resolve_tie(yes, no, rule=spec.tie_rule, secret=spec.secret, chair_vote=chair_vote)
        if outcome in (TieOutcome.PASSED, TieOutcome.REJECTED):
            passed, tie = outcome is TieOutcome.PASSED, []
        line = headline(spec.majority, spec.base, yes=yes, no=no, base_value=bv, passed=passed, tie=outcome)
        summary = (f"Tán thành {yes}, không tán thành {no}"
                   + (f", không biểu quyết {abstain}" if spec.method is Method.YES_NO_ABSTAIN else "")
                   + f". {line}.")
        return Result(counts=counts, passed=passed, tie=tie, summary=summary,
                      headline=line, tie_rule=spec.tie_rule.value, tie_outcome=outcome.value, **common)
    if spec.method is Method.RANKED:
        return _ranked(spec, items, seed=seed, common=common)
    return _choice(spec, items, common)


def _choice(spec: Spec, items: list[Ballot], common: dict[str, Any]) -> Result:
    tallies = {k: 0 for k in spec.options}
    voters_valid = 0
    for b, w in items:
        if is_abstain(b):
            continue
        voters_valid += w
        for k in b.get("o", []):
            tallies[k] += w
    order = sorted(spec.options, key=lambda k: (-tallies[k], k))
    seats = spec.seats
    bv = common["base_value"]
    winners: list[int] = []
    tie: list[int | str] = []
    if voters_valid:
        cutoff = tallies[order[seats - 1]]
        above = [k for k in order if tallies[k] > cutoff]
        at = [k for k in order if tallies[k] == cutoff]
        if len(above) + len(at) <= seats:
            winners = above + at
        else:
            winners = above
            tie = sorted(at)
        if cutoff == 0:
            winners = [k for k in winners if tallies[k] > 0]
            tie = []
        if spec.majority is not Majority.SIMPLE:
            winners = [k for k in winners if majority_reached(spec.majority, tallies[k], 0, bv)]
            if tie and not majority_reached(spec.majority, cutoff, 0, bv):
                tie = []
    passed = len(winners) == seats and not tie
    names = ", ".join(f"phương án {k}: {tallies[k]}" for k in spec.options)
    if passed:
        verdict = "Trúng: " + ", ".join(f"phương án {k}" for k in winners) + "."
    elif tie:
        verdict = "Hòa phiếu giữa " + ", ".join(f"phương án {k}" for k in tie) + ": cần biểu quyết lại."
    else:
        verdict = "Không đủ số phiếu cần thiết."
    return Result(counts={str(k): tallies[k] for k in spec.options}, passed=passed, winners=winners, tie=tie,
                  summary=f"{names}. {verdict}", headline=verdict.rstrip("."), **common)


# ---------------------------------------------------------------- ranked: IRV and STV


def lot_order(seed: str, keys: Iterable[int]) -> list[int]:
    """A reproducible random order of ``keys`` drawn from ``seed`` (first = loses the draw)."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())


def _lowest(continuing: list[int], tallies: dict[int, Fraction], history: list[dict[int, Fraction]],
            seed: str, notes: list[str]) -> int:
    low = min(tallies[c] for c in continuing)
    tied = [c for c in continuing if tallies[c] == low]
    if len(tied) == 1:
        return tied[0]
    for past in reversed(history):  # backwards tie-break
        values = {c: past.get(c, Fraction(0)) for c in tied}
        least = min(values.values())
        narrowed = [c for c in tied if values[c] == least]
        if len(narrowed) < len(tied):
            tied = narrowed
            if len(tied) == 1:
                notes.append(f"Hòa phiếu thấp nhất; loại phương án {tied[0]} theo số phiếu ở vòng trước.")
                return tied[0]
    loser = lot_order(seed, tied)[0]
    notes.append(f"Hòa phiếu thấp nhất giữa {', '.join(map(str, sorted(tied)))}; loại phương án {loser} "
                 f"theo bốc thăm (mã {seed or '—'}).")
    return loser


def _fmt(v: Fraction | int) -> str:
    v = Fraction(v)
    return str(v.numerator) if v.denominator == 1 else f"{float(v):.4f}"


def _ranked(spec: Spec, items: list[Ballot], *, seed: str, common: dict[str, Any]) -> Result:
    seats = spec.seats
    papers: list[tuple[list[int], Fraction]] = [(list(b["r"]), Fraction(w)) for b, w in items
                                                if not is_abstain(b) and b.get("r") and w > 0]
    first = {k: 0 for k in spec.options}
    for ranking, value in papers:
        first[ranking[0]] += int(value)
    total = sum((v for _r, v in papers), Fraction(0))
    quota = (total // (seats + 1)) + 1 if seats > 1 else None
    continuing = list(spec.options)
    elected: list[int] = []
    notes: list[str] = []
    rounds: list[dict[str, Any]] = []
    history: list[dict[int, Fraction]] = []
    tie: list[int | str] = []
    # each paper sits with its first continuing preference
    pile: dict[int, list[tuple[list[int], Fraction]]] = {}

    def place(ranking: list[int], value: Fraction) -> None:
        for k in ranking:
            if k in continuing:
                pile.setdefault(k, []).append((ranking, value))
                return

    for ranking, value in papers:
        place(ranking, value)

    def tallies() -> dict[int, Fraction]:
        return {c: sum((v for _r, v in pile.get(c, [])), Fraction(0)) for c in continuing}

    guard = 0
    while len(elected) < seats and continuing and total > 0:
        guard += 1
        if guard > 10 * (len(spec.options) + 2):  # cannot happen; keeps a bug from spinning forever
            break
        t = tallies()
        active = sum(t.values(), Fraction(0))
        kept = (quota or 0) * len(elected)  # with Gregory transfers an elected candidate keeps exactly the quota
        record: dict[str, Any] = {"round": len(rounds) + 1, "tallies": {str(c): _fmt(t[c]) for c in continuing},
                                  "exhausted": _fmt(total - active - kept)}
        if seats == 1:
            leader = max(continuing, key=lambda c: t[c])
            if active > 0 and 2 * t[leader] > active:
                elected.append(leader)
                record["elected"] = [leader]
                rounds.append(record)
                break
            if len(continuing) == 2 and t[continuing[0]] == t[continuing[1]]:
                tie = sorted(continuing)
                record["tie"] = tie
                rounds.append(record)
                break
            if len(continuing) == 1:
                elected.append(continuing[0])
                record["elected"] = list(continuing)
                rounds.append(record)
                break
            loser = _lowest(continuing, t, history, seed, notes)
            record["eliminated"] = loser
            rounds.append(record)
            history.append(t)
            continuing.remove(loser)
            for ranking, value in pile.pop(loser, []):
                place(ranking, value)
            continue
        # STV
        assert quota is not None
        left = seats - len(elected)
        if len(continuing) <= left:
            # the last ones standing; a tie at the last seat cannot occur here (fewer than seats)
            elected.extend(sorted(continuing, key=lambda c: (-t[c], c)))
            record["elected"] = sorted(continuing, key=lambda c: (-t[c], c))
            rounds.append(record)
            continuing.clear()
            break
        winners = sorted((c for c in continuing if t[c] >= quota), key=lambda c: (-t[c], c))
        if winners:
            c = winners[0]
            elected.append(c)
            record["elected"] = [c]
            surplus = t[c] - quota
            continuing.remove(c)
            held = pile.pop(c, [])
            if surplus > 0 and len(elected) < seats:
                factor = surplus / t[c]
                record["transfer"] = {"from": c, "surplus": _fmt(surplus), "factor": _fmt(factor)}
                for ranking, value in held:
                    place(ranking, value * factor)
            rounds.append(record)
            history.append(t)
            continue
        if len(continuing) == left + 1 and left == 1:
            low = min(t[c] for c in continuing)
            if sum(1 for c in continuing if t[c] == low) == 2 and len(continuing) == 2:
                tie = sorted(continuing)
                record["tie"] = tie
                rounds.append(record)
                break
        loser = _lowest(continuing, t, history, seed, notes)
        record["eliminated"] = loser
        rounds.append(record)
        history.append(t)
        continuing.remove(loser)
        for ranking, value in pile.pop(loser, []):
            place(ranking, value)
    passed = len(elected) == seats and not tie
    if passed:
        summary = "Trúng: " + ", ".join(f"phương án {k}" for k in elected) + "."
    elif tie:
        summary = "Hòa phiếu giữa " + ", ".join(f"phương án {k}" for k in tie) + ": cần biểu quyết lại."
    else:
        summary = "Không đủ phiếu để chọn đủ số người/phương án."
    label = "Loại dần (một người)" if seats == 1 else f"STV, hạn ngạch Droop {_fmt(quota or Fraction(0))}"
    return Result(counts={str(k): first[k] for k in spec.options}, passed=passed, winners=elected, tie=tie,
                  rounds=rounds, quota=_fmt(quota) if quota is not None else None, tie_breaks=notes,
                  summary=f"{label}. {summary}", headline=summary.rstrip("."), **common)
