"""Voting rules as pure functions: ballots, eligibility, quorum, majorities, IRV and STV."""

from __future__ import annotations

from fractions import Fraction

import pytest

from meetings import voting_rules as vr
from meetings.voting_rules import Base, Majority, Member, Method, Proxy
from storage.errors import Invalid

CANDIDATES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em"]


def spec(method: str = "yes_no_abstain", **kw: object) -> vr.Spec:
    return vr.make_spec(method=method, **kw)  # type: ignore[arg-type]


def yn(*votes: str, weights: list[int] | None = None) -> list[vr.Ballot]:
    return [({"v": v}, (weights[i] if weights else 1)) for i, v in enumerate(votes)]


# ---------------------------------------------------------------- settings


def test_make_spec_yes_no_has_no_options() -> None:
    with pytest.raises(Invalid, match="không có danh sách phương án"):
        spec("yes_no", options=["A", "B"])


@pytest.mark.parametrize("kw, message", [
    (dict(method="bầu"), "Hình thức"),
    (dict(method="single", options=["Một"]), "ít nhất hai"),
    (dict(method="single", options=["Một", " "]), "để trống"),
    (dict(method="single", options=["Đông Triều", "đông triều"]), "khác nhau"),
    (dict(method="single", options=["A", "B", "C"], seats=2), "một phương án thắng"),
    (dict(method="multiple", options=["A", "B", "C"], max_choices=4), "tối đa"),
    (dict(method="multiple", options=["A", "B", "C"], seats=3), "từ 1 đến 2"),
    (dict(method="ranked", options=["A", "B"], seats=0), "từ 1 đến 1"),
    (dict(method="yes_no", majority="most"), "đa số"),
    (dict(method="yes_no", base="all"), "Cơ sở"),
    (dict(method="yes_no", secret=True, allow_change=True), "không cho phép sửa phiếu"),
    (dict(method="yes_no", secret=True, visibility="live"), "không hiển thị kết quả"),
])
def test_make_spec_refuses(kw: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        vr.make_spec(**kw)  # type: ignore[arg-type]


def test_make_spec_multiple_defaults_max_choices_to_seats() -> None:
    s = spec("multiple", options=CANDIDATES, seats=2)
    assert s.max_choices == 2 and s.seats == 2 and s.options == (1, 2, 3, 4, 5)


def test_ranked_ignores_majority_settings() -> None:
    s = spec("ranked", options=CANDIDATES, majority="two_thirds", base="entitled")
    assert s.majority is Majority.SIMPLE and s.base is Base.VALID


# ---------------------------------------------------------------- ballots


@pytest.mark.parametrize("method, raw, stored", [
    ("yes_no", "yes", {"v": "yes"}),
    ("yes_no", "no", {"v": "no"}),
    ("yes_no_abstain", "abstain", {"v": "abstain"}),
    ("single", [2], {"o": [2]}),
    ("single", "abstain", {"abstain": True}),
    ("multiple", [1, 3], {"o": [1, 3]}),
    ("ranked", [3, 1, 2], {"r": [3, 1, 2]}),
    ("ranked", [3], {"r": [3]}),
])
def test_valid_ballots(method: str, raw: object, stored: dict[str, object]) -> None:
    options = [] if method.startswith("yes") else CANDIDATES[:3]
    s = spec(method, options=options, **({"seats": 2} if method == "multiple" else {}))
    assert vr.validate_ballot(s, raw) == stored


@pytest.mark.parametrize("method, raw, message", [
    ("yes_no", "abstain", "không có lựa chọn «Không biểu quyết»"),
    ("yes_no", "có", "chỉ nhận «yes» hoặc «no»"),
    ("yes_no_abstain", None, "«abstain»"),
    ("yes_no_abstain", ["yes"], "Phiếu không hợp lệ"),
    ("single", [1, 2], "Chỉ được chọn một"),
    ("single", [], "Phiếu trống"),
    ("single", [9], "Không có phương án số 9"),
    ("single", ["1"], "số nguyên"),
    ("single", [True], "số nguyên"),
    ("single", 1, "danh sách"),
    ("multiple", [1, 2, 3], "tối đa 2"),
    ("multiple", [1, 1], "một lần"),
    ("ranked", [1, 2, 1], "một lần"),
    ("ranked", {"r": [1]}, "danh sách"),
])
def test_malformed_ballots_are_refused_with_a_reason(method: str, raw: object, message: str) -> None:
    options = [] if method.startswith("yes") else CANDIDATES[:3]
    s = spec(method, options=options, **({"seats": 2} if method == "multiple" else {}))
    with pytest.raises(Invalid, match=message) as info:
        vr.validate_ballot(s, raw)
    assert info.value.details["field"] == "choice"


def test_choice_poll_can_forbid_abstaining() -> None:
    s = spec("single", options=CANDIDATES[:2], allow_abstain=False)
    with pytest.raises(Invalid, match="Không biểu quyết"):
        vr.validate_ballot(s, "abstain")


# ---------------------------------------------------------------- majorities


@pytest.mark.parametrize("majority, yes, no, base, passed", [
    ("simple", 5, 4, 0, True),
    ("simple", 5, 5, 10, False),  # a tie never passes
    ("simple", 0, 0, 0, False),
    ("absolute", 5, 0, 10, False),  # exactly half is not more than half
    ("absolute", 6, 0, 10, True),
    ("absolute", 6, 0, 11, True),
    ("absolute", 5, 0, 11, False),
    ("absolute", 1, 0, 0, False),  # an empty base never passes
    ("two_thirds", 2, 1, 3, True),
    ("two_thirds", 6, 0, 10, False),
    ("two_thirds", 7, 0, 10, True),
    ("two_thirds", 10, 0, 15, True),  # exactly two thirds is enough ("ít nhất")
    ("three_quarters", 3, 1, 4, True),
    ("three_quarters", 7, 0, 10, False),
    ("three_quarters", 8, 0, 10, True),
    ("three_quarters", Fraction(15, 2), 0, 10, True),
])
def test_majority(majority: str, yes: int, no: int, base: int, passed: bool) -> None:
    assert vr.majority_reached(majority, yes, no, base) is passed


def test_yes_no_tie_does_not_pass() -> None:
    r = vr.count(spec("yes_no"), yn("yes", "no", "yes", "no"), present=4, entitled=5)
    assert not r.passed and r.tie == ["yes", "no"]
    assert r.headline == "Không được thông qua: 2 tán thành, 2 không tán thành, số phiếu ngang nhau"
    assert r.headline in r.summary


# ---------------------------------------------------------------- presets, headline, the chair's tie rule


def test_presets_are_majority_and_base_combinations() -> None:
    half = vr.PRESETS["half_members"]
    assert (half.label, half.majority, half.base) == ("Quá nửa tổng số thành viên", Majority.ABSOLUTE, Base.ENTITLED)
    two = vr.PRESETS["two_thirds_all"]
    assert (two.label, two.majority, two.base) == ("Hai phần ba tổng số đại biểu", Majority.TWO_THIRDS, Base.ENTITLED)
    assert vr.preset_of("absolute", "entitled") is half
    assert vr.preset_of("simple", "cast") is None  # a custom combination
    assert len({(p.majority, p.base) for p in vr.PRESETS.values()}) == len(vr.PRESETS)


def test_half_of_all_members_not_of_votes_cast() -> None:
    """9 members, 6 voted: 5 yes passes (5 > 4.5), 4 yes does not even though 4 of 6 cast is a majority."""
    s = spec("yes_no", majority="absolute", base="entitled")
    passed = vr.count(s, yn("yes", "yes", "yes", "yes", "yes", "no"), present=6, entitled=9)
    assert passed.passed and passed.headline == "Được thông qua: 5/9 thành viên tán thành, quá nửa tổng số thành viên"
    failed = vr.count(s, yn("yes", "yes", "yes", "yes", "no", "no"), present=6, entitled=9)
    assert not failed.passed
    assert failed.headline == "Không được thông qua: 4/9 thành viên tán thành, chưa quá nửa tổng số thành viên"


def test_two_thirds_of_all_delegates_headline() -> None:
    s = spec("yes_no", majority="two_thirds", base="entitled")
    r = vr.count(s, yn(*["yes"] * 6, "no"), present=7, entitled=9)
    assert r.passed and r.headline == "Được thông qua: 6/9 thành viên tán thành, đạt hai phần ba tổng số thành viên"
    r = vr.count(s, yn(*["yes"] * 5, "no"), present=7, entitled=9)
    assert not r.passed and r.headline.endswith("chưa đạt hai phần ba tổng số thành viên")


def chair_spec(**kw: object) -> vr.Spec:
    return spec("yes_no_abstain", majority="absolute", base="entitled", tie_rule="chair", **kw)


def test_tie_with_chair_for_passes() -> None:
    r = vr.count(chair_spec(), yn("yes", "yes", "no", "no"), present=4, entitled=4, chair_vote="yes")
    assert r.passed and r.tie == [] and r.tie_outcome == "passed"
    assert r.headline == "Được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)"
    assert "HÒA" not in r.summary.upper()


def test_tie_with_chair_against_does_not_pass() -> None:
    r = vr.count(chair_spec(), yn("yes", "yes", "no", "no"), present=4, entitled=4, chair_vote="no")
    assert not r.passed and r.tie == [] and r.tie_outcome == "rejected"
    assert r.headline == "Không được thông qua theo ý kiến của Chủ tọa (số phiếu ngang nhau)"


@pytest.mark.parametrize("chair_vote", ["abstain", None])
def test_tie_with_chair_abstaining_or_absent_stays_unresolved(chair_vote: str | None) -> None:
    r = vr.count(chair_spec(), yn("yes", "yes", "no", "no", "abstain"), present=5, entitled=5, chair_vote=chair_vote)
    assert not r.passed and r.tie == ["yes", "no"] and r.tie_outcome == "unresolved"
    assert r.headline.startswith("Chưa phân định: số phiếu ngang nhau") and "Chủ tọa" in r.headline


def test_chair_rule_does_not_touch_a_non_tie() -> None:
    r = vr.count(chair_spec(), yn("yes", "yes", "yes", "no"), present=4, entitled=4, chair_vote="no")
    assert r.passed and r.tie_outcome == "no_tie"


def test_tie_rule_not_applicable_to_secret_polls() -> None:
    with pytest.raises(Invalid) as e:
        spec("yes_no", tie_rule="chair", secret=True)
    assert e.value.details["field"] == "tie_rule" and "Bỏ phiếu kín" in str(e.value)
    assert vr.resolve_tie(2, 2, rule="chair", secret=True, chair_vote="yes") is vr.TieOutcome.NOT_APPLICABLE
    assert vr.resolve_tie(2, 2, rule="", secret=False, chair_vote="yes") is vr.TieOutcome.NOT_APPLICABLE


def test_tie_rule_only_for_yes_no_polls() -> None:
    with pytest.raises(Invalid) as e:
        spec("single", options=["A", "B"], tie_rule="chair")
    assert e.value.details["field"] == "tie_rule"
    with pytest.raises(Invalid):
        spec("yes_no", tie_rule="lot")


def test_abstentions_count_in_cast_not_in_valid() -> None:
    ballots = yn("yes", "yes", "yes", "no", "abstain", "abstain")
    r = vr.count(spec(base="valid", majority="absolute"), ballots, present=6, entitled=9)
    assert (r.cast, r.valid, r.abstain, r.base_value) == (6, 4, 2, 4)
    assert r.counts == {"yes": 3, "no": 1, "abstain": 2} and r.passed
    r = vr.count(spec(base="cast", majority="absolute"), ballots, present=6, entitled=9)
    assert r.base_value == 6 and not r.passed  # 3 of 6 is not more than half


@pytest.mark.parametrize("base, expected_base, passed", [
    ("cast", 10, True), ("valid", 8, True), ("present", 12, False), ("entitled", 15, False)])
def test_bases_for_two_thirds(base: str, expected_base: int, passed: bool) -> None:
    ballots = yn(*["yes"] * 7 + ["no"] + ["abstain"] * 2)
    r = vr.count(spec(base=base, majority="two_thirds"), ballots, present=12, entitled=15)
    assert r.base_value == expected_base and r.passed is passed


def test_simple_majority_ignores_absent_members() -> None:
    r = vr.count(spec(base="entitled"), yn("yes", "yes", "no"), present=3, entitled=50)
    assert r.passed


def test_weights_are_counted() -> None:
    r = vr.count(spec("yes_no", majority="absolute", base="cast"), yn("yes", "no", "no", weights=[5, 2, 2]),
                 present=9, entitled=9)
    assert r.counts == {"yes": 5, "no": 4} and r.cast == 9 and r.ballots == 3 and r.passed


def test_no_ballots_no_pass() -> None:
    r = vr.count(spec(), [], present=5, entitled=5)
    assert not r.passed and r.cast == 0 and r.tie == []


# ---------------------------------------------------------------- choice polls


def opts(*keys: int | str, w: int = 1) -> vr.Ballot:
    return ({"abstain": True}, w) if keys == ("abstain",) else ({"o": list(keys)}, w)


def test_single_choice_plurality() -> None:
    s = spec("single", options=CANDIDATES[:3])
    r = vr.count(s, [opts(1), opts(2), opts(2), opts("abstain")], present=4, entitled=4)
    assert r.winners == [2] and r.passed and r.counts == {"1": 1, "2": 2, "3": 0} and r.valid == 3


def test_single_choice_tie_for_first_elects_no_one() -> None:
    s = spec("single", options=CANDIDATES[:3])
    r = vr.count(s, [opts(1), opts(2), opts(3), opts(1), opts(2)], present=5, entitled=5)
    assert r.winners == [] and r.tie == [1, 2] and not r.passed and "biểu quyết lại" in r.summary


def test_single_choice_absolute_majority_of_ballots() -> None:
    s = spec("single", options=CANDIDATES[:3], majority="absolute", base="valid")
    r = vr.count(s, [opts(1), opts(1), opts(2), opts(3)], present=4, entitled=4)
    assert r.winners == [] and not r.passed  # 2 of 4 is not more than half
    r = vr.count(s, [opts(1), opts(1), opts(1), opts(3)], present=4, entitled=4)
    assert r.winners == [1] and r.passed


def test_multiple_choice_elects_top_seats() -> None:
    s = spec("multiple", options=CANDIDATES, seats=2, max_choices=2)
    ballots = [opts(1, 2), opts(1, 3), opts(2, 3), opts(1, 4), opts(5)]
    r = vr.count(s, ballots, present=5, entitled=5)
    assert r.counts == {"1": 3, "2": 2, "3": 2, "4": 1, "5": 1}
    assert r.winners == [1] and r.tie == [2, 3] and not r.passed


def test_multiple_choice_majority_counts_voters_not_marks() -> None:
    s = spec("multiple", options=CANDIDATES[:4], seats=2, max_choices=2, majority="absolute", base="valid")
    ballots = [opts(1, 2), opts(1, 2), opts(1, 3), opts(4)]
    r = vr.count(s, ballots, present=4, entitled=4)
    assert r.base_value == 4 and r.winners == [1] and not r.passed  # option 2 has 2 of 4 voters: not more than half


def test_multiple_choice_with_weights() -> None:
    s = spec("multiple", options=CANDIDATES[:3], seats=2, max_choices=2)
    r = vr.count(s, [opts(1, 2, w=3), opts(3, w=2)], present=5, entitled=5)
    assert r.winners == [1, 2] and r.tie == [] and r.passed
    r = vr.count(s, [opts(1, 2, w=3), opts(3, w=2), opts(3)], present=6, entitled=6)
    assert r.winners == [] and r.tie == [1, 2, 3] and not r.passed  # three-way tie across the cut


def test_multiple_choice_zero_votes_do_not_win() -> None:
    s = spec("multiple", options=CANDIDATES[:4], seats=2, max_choices=2)
    r = vr.count(s, [opts(1)], present=1, entitled=1)
    assert r.winners == [1] and not r.passed and r.tie == []


# ---------------------------------------------------------------- ranked choice


def ranked(*order: int, w: int = 1) -> vr.Ballot:
    return ({"r": list(order)}, w)


def test_irv_tennessee_capital() -> None:
    """Memphis 1, Nashville 2, Chattanooga 3, Knoxville 4 (the classic example): Knoxville wins."""
    s = spec("ranked", options=["Memphis", "Nashville", "Chattanooga", "Knoxville"])
    ballots = [ranked(1, 2, 3, 4, w=42), ranked(2, 3, 4, 1, w=26), ranked(3, 4, 2, 1, w=15),
               ranked(4, 3, 2, 1, w=17)]
    r = vr.count(s, ballots, present=100, entitled=100)
    assert r.winners == [4] and r.passed
    assert [x.get("eliminated") for x in r.rounds] == [3, 2, None]
    assert r.rounds[-1]["tallies"] == {"1": "42", "4": "58"}


def test_irv_first_round_majority() -> None:
    s = spec("ranked", options=CANDIDATES[:3])
    r = vr.count(s, [ranked(1, 2), ranked(1), ranked(2, 1)], present=3, entitled=3)
    assert r.winners == [1] and len(r.rounds) == 1


def test_irv_exhausted_ballots_leave_the_count() -> None:
    s = spec("ranked", options=CANDIDATES[:3])
    ballots = [ranked(1, w=4), ranked(2, w=3), ranked(3, w=2)]  # no second preferences
    r = vr.count(s, ballots, present=9, entitled=9)
    assert r.winners == [1] and r.rounds[1]["exhausted"] == "2"  # 4 of the 7 continuing votes


def test_irv_backwards_tie_break() -> None:
    s = spec("ranked", options=CANDIDATES[:4])
    # round 1: 1:5 2:4 3:3 4:2 -> 4 out, its votes to 3 -> 1:5 2:4 3:5 ... then 2 out
    ballots = [ranked(1, w=5), ranked(2, w=4), ranked(3, w=3), ranked(4, 3, w=2)]
    r = vr.count(s, ballots, present=14, entitled=14)
    assert [x.get("eliminated") for x in r.rounds][:2] == [4, 2]
    # round 2 of another election: 2 and 3 tie with 4 each, 3 had fewer in round 1 -> 3 goes
    ballots = [ranked(1, w=6), ranked(2, w=4), ranked(3, w=3), ranked(4, 3, w=1)]
    r = vr.count(s, ballots, present=14, entitled=14)
    assert [x.get("eliminated") for x in r.rounds][:2] == [4, 3]
    assert "vòng trước" in r.tie_breaks[0]


def test_irv_lot_is_reproducible_from_the_seed() -> None:
    s = spec("ranked", options=CANDIDATES[:3])
    ballots = [ranked(1, w=2), ranked(2), ranked(3)]
    a = vr.count(s, ballots, present=5, entitled=5, seed="a1b2")
    b = vr.count(s, ballots, present=5, entitled=5, seed="a1b2")
    assert a.rounds == b.rounds and a.winners == [1]
    assert a.rounds[0]["eliminated"] == vr.lot_order("a1b2", [2, 3])[0]
    assert "bốc thăm" in a.tie_breaks[0] and "a1b2" in a.tie_breaks[0]


def test_irv_final_tie_is_not_decided_by_lot() -> None:
    s = spec("ranked", options=CANDIDATES[:2])
    r = vr.count(s, [ranked(1, 2), ranked(2, 1)], present=2, entitled=2, seed="x")
    assert r.winners == [] and r.tie == [1, 2] and not r.passed


def test_stv_wikipedia_food_election() -> None:
    """Oranges, Pears, Chocolate, Strawberries, Hamburgers; 20 voters, 3 seats, Droop quota 6."""
    s = spec("ranked", options=["Cam", "Lê", "Sô-cô-la", "Dâu tây", "Bánh kẹp"], seats=3)
    ballots = [ranked(1, w=4), ranked(2, 1, w=2), ranked(3, 4, w=8), ranked(3, 5, w=4), ranked(4), ranked(5)]
    r = vr.count(s, ballots, present=20, entitled=20)
    assert r.quota == "6"
    assert r.winners == [3, 1, 4] and r.passed
    assert r.rounds[0]["transfer"] == {"from": 3, "surplus": "6", "factor": "0.5000"}
    assert r.rounds[1]["tallies"] == {"1": "4", "2": "2", "4": "5", "5": "3"}
    assert r.rounds[1]["eliminated"] == 2


def test_stv_gregory_fractions_are_exact() -> None:
    s = spec("ranked", options=CANDIDATES[:4], seats=2)
    # 7 ballots, quota floor(7/3)+1 = 3; candidate 1 has 5, surplus 2 goes on at 2/5 each
    ballots = [ranked(1, 2, w=3), ranked(1, 3, w=2), ranked(4, w=1), ranked(3, w=1)]
    r = vr.count(s, ballots, present=7, entitled=7)
    assert r.winners[0] == 1
    assert r.rounds[1]["tallies"] == {"2": "1.2000", "3": "1.8000", "4": "1"}
    assert r.winners == [1, 3]


def test_stv_elects_remaining_when_candidates_run_out() -> None:
    s = spec("ranked", options=CANDIDATES[:3], seats=2)
    r = vr.count(s, [ranked(1, w=2), ranked(2)], present=3, entitled=3)
    assert set(r.winners) == {1, 2} and r.passed


def test_stv_weights_and_abstentions() -> None:
    s = spec("ranked", options=CANDIDATES[:3], seats=2)
    ballots = [ranked(1, 2, w=4), ranked(3, w=2), ({"abstain": True}, 5)]
    r = vr.count(s, ballots, present=11, entitled=11)
    assert r.quota == "3" and r.abstain == 5 and r.valid == 6
    assert r.winners[0] == 1


def test_ranked_without_ballots() -> None:
    r = vr.count(spec("ranked", options=CANDIDATES[:3]), [], present=3, entitled=3)
    assert r.winners == [] and not r.passed


# ---------------------------------------------------------------- eligibility and quorum


def members() -> list[Member]:
    return [
        Member(1, 101, voting=True, present=True),
        Member(2, 102, voting=True, present=True, weight=3),
        Member(3, 103, voting=True, present=False, weight=2),
        Member(4, 104, voting=True, present=False),
        Member(5, 105, voting=False, present=True),  # secretary: no vote
        Member(6, None, voting=True, present=True),  # no tablet: roll call only
        Member(7, 107, voting=True, present=False),
    ]


def test_present_voting_members_vote_for_themselves() -> None:
    e = vr.eligibility(members(), [], proxy_cap=1, weighted=False)
    assert [(r.participant_id, r.user_id, r.proxy) for r in e.rights] == [(1, 101, False), (2, 102, False),
                                                                         (6, None, False)]
    assert (e.present, e.entitled, e.present_weight, e.entitled_weight) == (3, 6, 3, 6)


def test_weights_only_when_the_poll_says_so() -> None:
    e = vr.eligibility(members(), [], proxy_cap=1, weighted=True)
    assert e.present_weight == 5 and e.entitled_weight == 9
    with pytest.raises(Invalid):
        vr.eligibility([Member(1, 1, True, True, weight=-1)], [], proxy_cap=0, weighted=True)


def test_proxies_with_a_cap() -> None:
    proxies = [Proxy(3, 1, order=1), Proxy(4, 1, order=2), Proxy(7, 2, order=3)]
    e = vr.eligibility(members(), proxies, proxy_cap=1, weighted=True)
    assert [(r.participant_id, r.holder_id, r.user_id, r.weight, r.proxy) for r in e.rights if r.proxy] == [
        (3, 1, 101, 2, True), (7, 2, 102, 1, True)]
    assert [(p.grantor, reason) for p, reason in e.refused] == [(4, "Người nhận ủy quyền đã giữ đủ 1 phiếu ủy quyền.")]
    assert e.present == 3  # proxies do not make anyone present
    assert e.present_weight == 1 + 3 + 1 + 2 + 1


@pytest.mark.parametrize("proxy, reason", [
    (Proxy(1, 2), "đang có mặt"),
    (Proxy(3, 4), "chưa có mặt"),
    (Proxy(3, 5), "Người nhận ủy quyền không có quyền"),
    (Proxy(5, 1), "Người ủy quyền không có quyền"),
    (Proxy(3, 3), "chính mình"),
    (Proxy(3, 99), "Người nhận ủy quyền không có quyền"),
])
def test_proxy_refusals(proxy: Proxy, reason: str) -> None:
    e = vr.eligibility(members(), [proxy], proxy_cap=2, weighted=False)
    assert not any(r.proxy for r in e.rights)
    assert reason in e.refused[0][1]


def test_proxy_cap_zero_means_no_proxies_and_no_double_grant() -> None:
    e = vr.eligibility(members(), [Proxy(3, 1)], proxy_cap=0, weighted=False)
    assert "không nhận ủy quyền" in e.refused[0][1]
    e = vr.eligibility(members(), [Proxy(3, 1, 1), Proxy(3, 2, 2)], proxy_cap=5, weighted=False)
    assert [r.holder_id for r in e.rights if r.proxy] == [1] and "đã ủy quyền" in e.refused[0][1]


@pytest.mark.parametrize("present, entitled, rule, needed, met", [
    (3, 6, "half", 4, False),
    (4, 6, "half", 4, True),
    (4, 7, "half", 4, True),
    (3, 7, "half", 4, False),
    (4, 6, "two_thirds", 4, True),
    (4, 7, "two_thirds", 5, False),
    (5, 6, "three_quarters", 5, True),
    (5, 6, "all", 6, False),
    (0, 6, "none", 0, True),
    (0, 0, "half", 0, True),
])
def test_quorum_to_open(present: int, entitled: int, rule: str, needed: int, met: bool) -> None:
    q = vr.quorum_to_open(present, entitled, rule)
    assert (q.needed, q.met) == (needed, met)


def test_quorum_rule_must_be_known() -> None:
    with pytest.raises(Invalid, match="túc số"):
        vr.quorum_to_open(1, 1, "most")


def test_threshold_text() -> None:
    assert vr.threshold_text("absolute", 15) == "Cần hơn 7,5 phiếu (quá nửa của 15)"
    assert vr.threshold_text("absolute", 14) == "Cần hơn 7 phiếu (quá nửa của 14)"
    assert vr.threshold_text("two_thirds", 10) == "Cần ít nhất 7 phiếu (2/3 của 10)"
    assert vr.threshold_text("three_quarters", 10) == "Cần ít nhất 8 phiếu (3/4 của 10)"


def test_methods_have_labels() -> None:
    assert set(vr.METHOD_LABELS) == set(Method)
    assert set(vr.MAJORITY_LABELS) == set(Majority)
    assert set(vr.BASE_LABELS) == set(Base)
