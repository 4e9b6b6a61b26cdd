"""Two-factor services (#18) without HTTP: the secret at rest is bound to its account, and one code raced by two
logins at the same moment is accepted once (the conditional UPDATE of the last time step, on SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio

import pyotp
import pytest

from eoffice import two_factor
from eoffice.schema.identity import UserTotp
from storage.db import Database, utcnow
from storage.errors import Conflict
from tests.eoffice.conftest import Org


async def _enrolled(db: Database, org: Org, username: str) -> tuple[str, str]:
    """Enrol ``username``; (secret, the code that confirmed it)."""
    async with db.uow() as uow:
        secret = await two_factor.start_enrolment(uow, org[username])
        await uow.commit()
    first = pyotp.TOTP(secret).at(utcnow())
    async with db.uow() as uow:
        codes = await two_factor.confirm_enrolment(uow, org[username], first)
        await uow.commit()
    assert len(codes) == two_factor.RECOVERY_CODES
    return secret, first


async def test_the_secret_is_encrypted_and_bound_to_its_account(db: Database, org: Org) -> None:
    secret, _first = await _enrolled(db, org, "vanthu")
    async with db.uow() as uow:
        row = await uow.session.get(UserTotp, org["vanthu"].id)
        assert row is not None and secret.encode() not in row.secret_enc
        assert two_factor.decrypt_secret(uow, org["vanthu"].id, row.secret_enc) == secret
        with pytest.raises(Conflict, match="khóa bí mật của máy chủ đã thay đổi"):  # copied onto another account
            two_factor.decrypt_secret(uow, org["lanhdao"].id, row.secret_enc)
    async with db.uow() as uow:
        with pytest.raises(Conflict, match="đã được bật"):
            await two_factor.start_enrolment(uow, org["vanthu"])


async def test_one_code_raced_by_two_logins_is_accepted_once(db: Database, org: Org) -> None:
    secret, _first = await _enrolled(db, org, "lanhdao")
    code = pyotp.TOTP(secret).at(utcnow().timestamp() + 30)  # the next step: not used yet
    user = org["lanhdao"]
    async with db.uow() as uow1:
        assert await two_factor.verify_code(uow1, user, code) == "totp"

        async def other() -> str:
            async with db.uow() as uow2:
                result = await two_factor.verify_code(uow2, user, code)
                await uow2.commit()
                return result

        racer = asyncio.create_task(other())
        await asyncio.sleep(0.2)  # let it reach the database while the first holds its transaction
        await uow1.commit()
    assert await asyncio.wait_for(racer, 30) == "replay"
    async with db.uow() as uow:
        assert await two_factor.verify_code(uow, user, code) == "replay"
        assert await two_factor.verify_code(uow, user, "12345") == "wrong"  # neither a code nor a recovery code
