"""Progressive login delays (no lockout) with an injected clock, and equal timing for unknown usernames."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pytest
from argon2 import PasswordHasher

from eoffice import identity
from eoffice.login_throttle import Rule, ThrottlePolicy
from storage.db import Database
from storage.errors import Throttled, Unauthenticated

GOOD = "Mật-khẩu-2026"


class Clock:
    """A clock for tests: ``clock()`` is now; ``advance(seconds)`` moves it."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


POLICY = ThrottlePolicy(window=600, pair=Rule(free=3, base=1, cap=60), account=Rule(free=6, base=1, cap=5),
                        address=Rule(free=40, base=1, cap=600))


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its cheapest: these tests count attempts, they do not time them."""
    monkeypatch.setattr(identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(identity, "_dummy_hash", None)


async def _user(db: Database, username: str, active: bool = True) -> None:
    async with db.uow() as uow:
        user = await identity.create_user(uow, None, username=username, full_name="Trần Văn Hùng", password=GOOD)
        user.active = active
        await uow.commit()


async def _try(db: Database, clock: Clock, username: str, password: str, ip: str,
               policy: ThrottlePolicy = POLICY) -> str:
    """'ok', 'wrong' or the wait in seconds as 'wait N'."""
    async with db.uow() as uow:
        try:
            await identity.authenticate(uow, username, password, ip, policy=policy, now=clock())
            await uow.commit()
            return "ok"
        except Throttled as exc:
            return f"wait {exc.details['retry_after']}"
        except Unauthenticated:
            return "wrong"


def test_rule_doubles_and_caps() -> None:
    rule = Rule(free=3, base=1, cap=20)
    assert [rule.delay(n) for n in range(9)] == [0, 0, 0, 1, 2, 4, 8, 16, 20]
    assert rule.delay(10_000) == 20  # no overflow


async def test_delay_grows_per_account_and_address_then_decays(db: Database, cheap_hashes: None) -> None:
    await _user(db, "chutich")
    clock = Clock()
    got = []
    for _ in range(6):  # a guesser from one address, trying again as soon as allowed
        result = await _try(db, clock, "chutich", "doan-sai-1", "10.0.0.9")
        if result.startswith("wait"):
            got.append(result)
            clock.advance(int(result.split()[1]))
            result = await _try(db, clock, "chutich", "doan-sai-1", "10.0.0.9")
        assert result == "wrong"
    assert got == ["wait 1", "wait 2", "wait 4"]  # 3 free failures, then 1, 2, 4 s
    assert await _try(db, clock, "chutich", GOOD, "10.0.0.9") == "wait 8"
    clock.advance(601)  # failures older than the window no longer count
    assert await _try(db, clock, "chutich", "doan-sai-1", "10.0.0.9") == "wrong"
    assert await _try(db, clock, "chutich", GOOD, "10.0.0.9") == "ok"


async def test_others_failures_delay_the_owner_only_briefly(db: Database, cheap_hashes: None) -> None:
    """An attacker trying to lock the chairman out before the meeting: from many addresses, for as long
    as they like. The chairman, from their own tablet, waits at most the account cap (5 s here)."""
    await _user(db, "chutich")
    clock = Clock()
    for i in range(40):
        result = await _try(db, clock, "chutich", f"doan-sai-{i}", f"10.0.{i}.1")
        if result.startswith("wait"):
            clock.advance(int(result.split()[1]))
            assert await _try(db, clock, "chutich", f"doan-sai-{i}", f"10.0.{i}.1") == "wrong"
    first = await _try(db, clock, "chutich", GOOD, "192.168.1.20")
    assert first in ("ok", *(f"wait {n}" for n in range(1, 6)))
    if first != "ok":
        clock.advance(int(first.split()[1]))
        assert await _try(db, clock, "chutich", GOOD, "192.168.1.20") == "ok"
    # the owner's success resets the account's count: the next failure is free again
    assert await _try(db, clock, "chutich", "go-nham-1", "192.168.1.20") == "wrong"


async def test_one_address_spraying_many_accounts_is_slowed(db: Database, cheap_hashes: None) -> None:
    clock = Clock()
    policy = ThrottlePolicy(window=600, pair=Rule(3, 1, 60), account=Rule(6, 1, 5), address=Rule(4, 1, 600))
    results = [await _try(db, clock, f"nguoi{i}", "Matkhau-2026", "10.9.9.9", policy) for i in range(6)]
    assert results == ["wrong"] * 4 + ["wait 1", "wait 1"]
    # the same accounts from another address are not slowed by that one
    assert await _try(db, clock, "nguoi5", "Matkhau-2026", "10.9.9.10", policy) == "wrong"


async def test_unknown_inactive_and_known_usernames_take_the_same_time(db: Database) -> None:
    """The real argon2 cost: without the dummy hash an unknown name answers ~100x faster than a known one.
    Interleaved attempts, medians compared with a wide margin (robust on a busy machine)."""
    await _user(db, "chutich")
    await _user(db, "nghihuu", active=False)
    clock = Clock()
    policy = ThrottlePolicy(window=600, pair=Rule(100, 1, 1), account=Rule(100, 1, 1), address=Rule(100, 1, 1))
    timings: dict[str, list[float]] = {"chutich": [], "khongco": [], "nghihuu": []}
    for i in range(5):
        for name in timings:
            start = time.perf_counter()
            assert await _try(db, clock, name, f"doan-sai-{i}", f"10.1.{i}.1", policy) == "wrong"
            timings[name].append(time.perf_counter() - start)
    known = statistics.median(timings["chutich"])
    for name in ("khongco", "nghihuu"):
        ratio = statistics.median(timings[name]) / known
        assert 0.5 < ratio < 2.0, (name, timings)


async def test_inactive_account_with_the_right_password_is_told_it_is_locked(db: Database,
                                                                             cheap_hashes: None) -> None:
    await _user(db, "nghihuu", active=False)
    async with db.uow() as uow:
        with pytest.raises(Unauthenticated, match="đã bị khóa"):
            await identity.authenticate(uow, "nghihuu", GOOD, "10.0.0.1", policy=POLICY)
    async with db.uow() as uow:
        with pytest.raises(Unauthenticated, match="không đúng"):
            await identity.authenticate(uow, "nghihuu", "sai-roi-1", "10.0.0.1", policy=POLICY)
