"""Pure rules: no database."""

from __future__ import annotations

import pytest

from meetings import rules, topics
from meetings.rules import Seat, State
from storage.errors import Conflict, Forbidden


@pytest.mark.parametrize(
    ("entitled", "rule", "needed"),
    [
        (10, "half", 6), (11, "half", 6), (1, "half", 1), (0, "half", 0), (2, "half", 2),
        (9, "two_thirds", 6), (10, "two_thirds", 7), (3, "two_thirds", 2), (1, "two_thirds", 1),
        (8, "three_quarters", 6), (9, "three_quarters", 7), (4, "three_quarters", 3),
        (7, "all", 7), (7, "none", 0),
    ],
)
def test_quorum_needed(entitled: int, rule: str, needed: int) -> None:
    assert rules.quorum_needed(entitled, rule) == needed


def test_quorum_met_edges() -> None:
    assert not rules.quorum(5, 10, "half").met  # exactly half is not "more than half"
    assert rules.quorum(6, 10, "half").met
    assert rules.quorum(6, 9, "two_thirds").met and not rules.quorum(5, 9, "two_thirds").met
    assert rules.quorum(0, 0, "half").met  # nobody entitled: nothing to wait for
    q = rules.quorum(3, 4, "three_quarters").public()
    assert q == {"present": 3, "entitled": 4, "needed": 3, "met": True, "rule": "three_quarters",
                 "label": "Ít nhất 3/4 số thành viên"}


@pytest.mark.parametrize(
    ("current", "target", "ok"),
    [
        ("draft", "invited", True), ("draft", "in_progress", False), ("invited", "in_progress", True),
        ("in_progress", "ended", True), ("ended", "in_progress", False), ("ended", "archived", True),
        ("archived", "ended", False), ("invited", "cancelled", True), ("in_progress", "cancelled", False),
        ("cancelled", "invited", False), ("invited", "ended", False),
    ],
)
def test_transitions(current: str, target: str, ok: bool) -> None:
    if ok:
        rules.check_transition(current, target)
    else:
        with pytest.raises(Conflict) as exc:
            rules.check_transition(current, target)
        assert "Không thể" in exc.value.message and exc.value.status == 409


def _access(user_id: int, state: str = "invited", **kw: object) -> rules.Access:
    seats = [
        Seat(1, user_id=10, unit_id=None, substitute_id=None),  # a member
        Seat(2, user_id=11, unit_id=None, substitute_id=12, substitute_approved=True),  # 11 sent 12 (approved)
        Seat(3, user_id=None, unit_id=50, substitute_id=None, site_id=7),  # a district, at site 7
        Seat(4, user_id=None, unit_id=None, substitute_id=None),  # a guest
    ]
    args = {"state": state, "created_by": 1, "chair_id": 2, "secretary_id": 3, "seats": seats,
            "site_operators": [(7, 20)]}
    args.update(kw)
    return rules.access_for(user_id, **args)  # type: ignore[arg-type]


def test_access_roles_and_draft_visibility() -> None:
    assert _access(1).manager and not _access(1).controller  # the organiser prepares, does not run the room
    assert _access(2).chair and _access(2).controller and _access(3).controller
    assert _access(10).can_view and not _access(10).manager
    assert _access(99).can_view is False
    assert _access(20).can_view and _access(20).sites == {7}  # the site operator
    for uid in (10, 12, 20):
        assert not _access(uid, state="draft").can_view  # a draft is seen by its organisers only
    assert _access(1, state="draft").can_view
    with pytest.raises(Forbidden):
        _access(10).require_control()


def test_substitute_carries_the_invitees_access() -> None:
    sub = _access(12)
    assert sub.seats == {2} and sub.represents == {11}
    assert sub.can_see_item(True, [11])  # listed invitee -> their substitute sees it
    assert not _access(10).can_see_item(True, [11])
    assert _access(11).can_see_item(True, [11]) and _access(11).seats == frozenset()  # invitee keeps reading
    assert _access(3).can_see_item(True, [])  # the secretary minutes every item
    assert _access(10).can_see_item(False, [])
    # until the chair approves (or the substitute is from the invitee's unit): the meeting, not its secrets
    unapproved = rules.access_for(12, state="invited", created_by=1, chair_id=2, secretary_id=3,
                                  seats=[Seat(2, user_id=11, unit_id=None, substitute_id=12)])
    assert unapproved.seats == {2} and unapproved.can_view and unapproved.represents == frozenset()
    assert not unapproved.can_see_item(True, [11]) and unapproved.can_see_item(False, [])


def test_unit_seat_answered_by_its_leaders_only() -> None:
    leader = _access(30, user_unit_id=50, user_answers_for_unit=True)
    assert leader.unit_seats == {3} and leader.can_view
    clerkless = _access(31, user_unit_id=50, user_answers_for_unit=False)
    assert clerkless.unit_seats == frozenset() and not clerkless.can_view
    assert rules.may_respond(leader, Seat(3, None, 50, None))
    assert not rules.may_respond(_access(10), Seat(3, None, 50, None))


def test_check_in_permissions() -> None:
    seat = Seat(3, user_id=None, unit_id=50, substitute_id=40, site_id=7)
    assert rules.may_check_in(_access(20), seat)  # operator of the seat's site
    assert rules.may_check_in(_access(3), seat)  # secretary
    assert rules.may_check_in(_access(40, seats=[seat]), seat)  # the person in the seat
    assert not rules.may_check_in(_access(10), seat)


def test_width_buckets_and_reorder_and_outline() -> None:
    assert [rules.width_bucket(w) for w in (1, 480, 481, 1000, 1600, 5000)] == [480, 480, 800, 1200, 1600, 2400]
    assert rules.reorder([1, 2, 3, 4], [3, 1, 99, 3]) == [3, 1, 2, 4]
    o = rules.Outline([5, 6, 7])
    assert (o.after(None), o.after(5), o.after(7), o.before(6), o.before(5)) == (5, 6, None, 5, None)
    assert State("in_progress") is State.IN_PROGRESS


def test_topics() -> None:
    assert topics.parse("meeting:12") == (12, "room", None)
    assert topics.parse("meeting:12:item:4") == (12, "item", 4)
    assert topics.parse("meeting:12:control") == (12, "control", None)
    for bad in ("meeting:", "meeting:x", "meeting:1:item:", "meeting:1:other", "user:1"):
        assert topics.parse(bad) is None
