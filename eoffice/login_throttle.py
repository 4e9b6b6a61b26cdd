"""Progressive login delays instead of a lockout.

A hard lockout after N failures lets anyone lock the chairman out before a meeting by typing
a wrong password N times. Here failures only make the *next* attempt wait, and the wait
doubles with every further failure up to a cap; failures older than the window no longer
count, so the delay decays by itself. Three keys, each with its own rule:

- one address on one account (a guesser): few free failures, a long cap;
- one account from anywhere (guessers spread over many addresses): more free failures and a
  short cap, so the owner, who knows the password, waits at most that long whatever others do;
- one address on any account (password spraying): many free failures, a long cap.

A success resets the account's counters (the owner is in); it does not reset the address's, so an
attacker with an account of their own cannot wash their address clean by logging in to it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from sqlalchemy import func, select

from eoffice.schema.identity import LoginAttempt
from storage.db import UnitOfWork


@dataclass(frozen=True)
class Rule:
    free: int  # failures without any delay
    base: float  # seconds of delay at the first counted failure; doubles with each one after
    cap: float  # the longest delay

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.base * 2 ** min(failures - self.free, 40), self.cap)


@dataclass(frozen=True)
class ThrottlePolicy:
    window: float = 15 * 60  # seconds: failures older than this no longer count
    pair: Rule = field(default_factory=lambda: Rule(free=5, base=1.0, cap=15 * 60))
    account: Rule = field(default_factory=lambda: Rule(free=10, base=1.0, cap=30.0))
    address: Rule = field(default_factory=lambda: Rule(free=20, base=1.0, cap=15 * 60))

    @classmethod
    def from_settings(cls, max_failures: int, window_seconds: int) -> ThrottlePolicy:
        """``EOFFICE``'s settings: ``login_max_failures`` free failures per address and account."""
        return cls(window=float(window_seconds),
                   pair=Rule(free=max_failures, base=1.0, cap=float(window_seconds)),
                   account=Rule(free=max_failures * 2, base=1.0, cap=30.0),
                   address=Rule(free=max_failures * 4, base=1.0, cap=float(window_seconds)))


async def _failures(uow: UnitOfWork, since: dt.datetime, *conditions: object) -> tuple[int, dt.datetime | None]:
    q = select(func.count(), func.max(LoginAttempt.at)).where(
        LoginAttempt.success.is_(False), LoginAttempt.at >= since, *conditions)  # type: ignore[arg-type]
    count, last = (await uow.session.execute(q)).one()
    return int(count or 0), last


async def wait_seconds(uow: UnitOfWork, policy: ThrottlePolicy, username: str, ip: str, now: dt.datetime) -> int:
    """Seconds before the next attempt for ``username`` from ``ip`` may be checked (0: now)."""
    since = now - dt.timedelta(seconds=policy.window)
    last_ok = await uow.session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.username == username, LoginAttempt.success.is_(True)))
    account_since = max(since, last_ok) if last_ok is not None else since
    checks = [
        (policy.pair, await _failures(uow, account_since, LoginAttempt.username == username, LoginAttempt.ip == ip)),
        (policy.account, await _failures(uow, account_since, LoginAttempt.username == username)),
        (policy.address, await _failures(uow, since, LoginAttempt.ip == ip)),
    ]
    wait = 0.0
    for rule, (count, last) in checks:
        if last is not None:
            wait = max(wait, (last - now).total_seconds() + rule.delay(count))
    return math.ceil(wait) if wait > 0 else 0
