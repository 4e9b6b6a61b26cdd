"""Units administered in the app (#18): create, rename, move (cycles refused), close (nothing new, history kept),
positions' rank, and the merge of two communes into a new one (staff, documents, registers, tasks, dossiers
findable under the new unit; the old ones marked merged, not deleted; a preview that changes nothing)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from eoffice import audit, dossiers, export, identity, org_admin, org_merge, search, tasks
from eoffice.documents import get_document, register_incoming
from eoffice.org import Role, Unit, UnitKind, UnitStatus, User
from eoffice.registers import Register, local_date
from eoffice.schema.documents import Document
from eoffice.schema.tasks import Task
from storage.blobs import BlobStore
from storage.db import Database, utcnow
from storage.errors import Conflict, Forbidden, Invalid
from tests.eoffice.conftest import PASSWORD, Org, incoming_fields


async def _actions(db: Database, action: str) -> list[audit.AuditEntry]:
    async with db.uow(readonly=True) as uow:
        return list(
            (
                await uow.session.scalars(
                    select(audit.AuditEntry).where(audit.AuditEntry.action == action).order_by(audit.AuditEntry.seq)
                )
            ).all()
        )


async def test_create_rename_move_close_and_cycles(db: Database, org: Org) -> None:
    admin, u = org["admin"], org.units
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await org_admin.create_unit(
                uow, org["lanhdao"], code="TC", name="Phòng Tài chính", kind=UnitKind.OFFICE, parent_id=u["UBND"].id
            )
        tc = await org_admin.create_unit(
            uow, admin, code="TC", name="Phòng  Tài chính ", kind=UnitKind.OFFICE, parent_id=u["UBND"].id
        )
        with pytest.raises(Conflict, match="đã có"):
            await org_admin.create_unit(uow, admin, code="TC", name="Trùng mã", kind=UnitKind.OFFICE, parent_id=None)
        ns = await org_admin.create_unit(
            uow, admin, code="NS", name="Tổ Ngân sách", kind=UnitKind.OFFICE, parent_id=tc.id
        )
        await uow.commit()
    assert tc.name == "Phòng Tài chính" and not tc.is_agency and tc.status == UnitStatus.ACTIVE
    async with db.uow() as uow:
        await org_admin.update_unit(
            uow, admin, u["DT"].id, name="Ủy ban nhân dân thành phố Đông Triều", agency_code="000.00.15.H41"
        )
        with pytest.raises(Invalid, match="Mã định danh"):
            await org_admin.update_unit(uow, admin, u["DT"].id, agency_code="000 00")
        with pytest.raises(Conflict, match="vòng lặp"):
            await org_admin.move_unit(uow, admin, tc.id, ns.id)  # under its own sub-unit
        with pytest.raises(Conflict, match="vòng lặp"):
            await org_admin.move_unit(uow, admin, tc.id, tc.id)
        await org_admin.move_unit(uow, admin, ns.id, u["KT"].id)
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        dt_unit = await uow.session.get(Unit, u["DT"].id)
        moved = await uow.session.get(Unit, ns.id)
        assert dt_unit is not None and moved is not None
        assert (dt_unit.name, dt_unit.agency_code) == ("Ủy ban nhân dân thành phố Đông Triều", "000.00.15.H41")
        assert moved.parent_id == u["KT"].id
        tree = await org_admin.unit_tree(uow, admin)
        order = [r.unit.code for r in tree]
        assert order.index("UBND") < order.index("KT") < order.index("NS")
        assert next(r.depth for r in tree if r.unit.code == "NS") == 2
    update = (await _actions(db, "unit.update"))[-1]
    assert update.data["changes"]["agency_code"] == ["", "000.00.15.H41"]
    assert (await _actions(db, "unit.move"))[-1].data["changes"]["parent_id"] == [tc.id, u["KT"].id]

    async with db.uow() as uow:  # closing: refused while people work there, then done
        with pytest.raises(Conflict, match="cán bộ"):
            await org_admin.close_unit(uow, admin, u["KT"].id)
        await org_admin.close_unit(uow, admin, tc.id, "Chuyển chức năng về Sở Tài chính")
        await uow.commit()
    async with db.uow() as uow:  # a closed unit takes no task, no sub-unit and leaves the pickers
        with pytest.raises(Conflict, match="giải thể"):
            await org_admin.create_unit(uow, admin, code="X", name="Tổ mới", kind=UnitKind.OFFICE, parent_id=tc.id)
        groups = await tasks.direction_candidates(uow, org["lanhdao"])
        assert tc.id not in {g.unit.id for g in groups}
        with pytest.raises(Conflict, match="giải thể"):
            await org_admin.close_unit(uow, admin, tc.id)
    closed = await _actions(db, "unit.close")
    assert closed[-1].data["reason"] == "Chuyển chức năng về Sở Tài chính"


async def test_positions_rank_people(db: Database, org: Org) -> None:
    admin = org["admin"]
    async with db.uow() as uow:
        for name, title in (("lanhdao", "Chủ tịch UBND tỉnh"), ("chanhvp", "Phó Chủ tịch UBND tỉnh")):
            user = await uow.session.get(User, org[name].id)
            assert user is not None
            user.title = title
        await uow.commit()
    async with db.uow() as uow:
        await org_admin.set_position(uow, admin, "Phó Chủ tịch UBND tỉnh", 20)
        await org_admin.set_position(uow, admin, "Chủ tịch UBND tỉnh", 10)
        with pytest.raises(Forbidden):
            await org_admin.set_position(uow, org["lanhdao"], "Chủ tịch UBND tỉnh", 1)
        await uow.commit()
    async with db.uow(readonly=True) as uow:
        rows = await org_admin.positions(uow, admin)
        assert [r.name for r in rows[:2]] == ["Chủ tịch UBND tỉnh", "Phó Chủ tịch UBND tỉnh"]
        ranks = dict(
            (
                await uow.session.execute(
                    select(User.username, User.rank).where(User.username.in_(["lanhdao", "chanhvp"]))
                )
            )
            .tuples()
            .all()
        )
    assert ranks == {"lanhdao": 10, "chanhvp": 20}
    assert (await _actions(db, "position.set"))[-1].data["people"] == 1


async def _commune(db: Database, code: str, name: str, parent: int) -> tuple[Unit, User, User]:
    async with db.uow() as uow:
        unit = Unit(code=code, name=name, kind=UnitKind.COMMUNE, is_agency=True, parent_id=parent)
        uow.session.add(unit)
        await uow.session.flush()
        clerk = await identity.create_user(
            uow,
            None,
            username=f"{code.lower()}.vanthu",
            full_name=f"Văn thư {name}",
            password=PASSWORD,
            roles=[Role.CLERK],
            unit_id=unit.id,
        )
        leader = await identity.create_user(
            uow,
            None,
            username=f"{code.lower()}.chutich",
            full_name=f"Chủ tịch {name}",
            password=PASSWORD,
            roles=[Role.LEADER],
            unit_id=unit.id,
        )
        await uow.commit()
    return unit, clerk, leader


async def test_merge_two_communes_into_a_new_one(db: Database, org: Org, blobs: BlobStore) -> None:
    admin, dt_id = org["admin"], org.units["DT"].id
    a, a_clerk, a_leader = await _commune(db, "BK", "Ủy ban nhân dân xã Bình Khê", dt_id)
    b, b_clerk, _ = await _commune(db, "TT", "Ủy ban nhân dân xã Tràng Lương", dt_id)
    docs = {}
    async with db.uow() as uow:  # each commune registers a document; a task goes to commune A; a dossier
        docs["a"], _ = await register_incoming(
            uow,
            a_clerk,
            blobs,
            **incoming_fields(1, summary="Công văn về việc chuyển đổi số ở xã Bình Khê"),
            paper_only=True,
        )
        docs["b"], _ = await register_incoming(
            uow,
            b_clerk,
            blobs,
            **incoming_fields(2, summary="Công văn về việc chuyển đổi số ở xã Tràng Lương"),
            paper_only=True,
        )
        await uow.commit()
    async with db.uow() as uow:
        dossier = await dossiers.open_dossier(uow, a_leader, "Hồ sơ chuyển đổi số xã Bình Khê")
        await uow.commit()
    async with db.uow() as uow:
        task = await tasks.create_meeting_task(
            uow,
            admin,
            title="Rà soát hồ sơ địa chính xã",
            instruction="",
            assignee={"unit_id": a.id},
            deadline=None,
            source={"test": 1},
        )
        await uow.commit()
    assert (docs["a"].number, docs["b"].number) == (1, 1)  # each commune's own register

    async with db.uow(readonly=True) as uow:
        with pytest.raises(Forbidden):
            await org_merge.preview_merge(uow, org["lanhdao"], [a.id, b.id], None)
        counts = await org_merge.preview_merge(uow, admin, [a.id, b.id], None)
    assert (counts.people, counts.documents, counts.registers, counts.tasks, counts.dossiers) == (4, 2, 2, 1, 1)
    async with db.uow(readonly=True) as uow:  # the preview changed nothing
        assert (await uow.session.get(Unit, a.id)).status == UnitStatus.ACTIVE  # type: ignore[union-attr]

    new = org_merge.NewUnit(
        code="BKM",
        name="Ủy ban nhân dân xã Bình Khê (mới)",
        kind=UnitKind.COMMUNE,
        parent_id=dt_id,
        agency_code="000.21.15.H41",
    )
    async with db.uow() as uow:
        with pytest.raises(Invalid, match="đồng thời"):
            await org_merge.merge_units(uow, admin, [a.id, b.id], target_id=a.id)
        c, done = await org_merge.merge_units(uow, admin, [a.id, b.id], new=new)
        await uow.commit()
    assert done == counts

    async with db.uow(readonly=True) as uow:
        olds = {u.code: u for u in (await uow.session.scalars(select(Unit).where(Unit.id.in_([a.id, b.id])))).all()}
        assert {u.status for u in olds.values()} == {UnitStatus.MERGED} and {
            u.merged_into_id for u in olds.values()
        } == {c.id}
        moved = {
            d.id: d
            for d in (
                await uow.session.scalars(select(Document).where(Document.id.in_([docs["a"].id, docs["b"].id])))
            ).all()
        }
        assert {d.agency_id for d in moved.values()} == {c.id}
        assert moved[docs["a"].id].former_agency_id == a.id and moved[docs["b"].id].former_agency_id == b.id
        assert (await uow.session.get(Task, task.id)).assignee_unit_id == c.id  # type: ignore[union-attr]
        people = (
            await uow.session.scalars(select(User.unit_id).where(User.id.in_([a_clerk.id, b_clerk.id, a_leader.id])))
        ).all()
        assert set(people) == {c.id}
        # registers stay where they were (read-only) with their numbers
        regs = (
            await uow.session.execute(
                select(Register.agency_id, Register.last_number).where(Register.agency_id.in_([a.id, b.id]))
            )
        ).all()
        assert sorted(regs) == sorted([(a.id, 1), (b.id, 1)])
        # search by the new unit finds both; its clerk (formerly of A) sees B's too, and the dossier moved
        clerk = await uow.session.get(User, a_clerk.id)
        assert clerk is not None
        hits = await search.search(uow, clerk, "chuyen doi so", search.Filters(unit_id=c.id))
        assert {h.document.id for h in hits} == {docs["a"].id, docs["b"].id}
        assert await search.search(uow, clerk, "", search.Filters(unit_id=a.id)) == []
        seen = await get_document(uow, clerk, docs["b"].id)
        assert seen.former_agency_id == b.id
        d = await dossiers.get_dossier(uow, a_leader, dossier.id)
        assert d.agency_id == c.id
        # the merged communes leave the pickers
        leader = await uow.session.get(User, org["lanhdao"].id)
        assert leader is not None
        assert not {a.id, b.id} & {g.unit.id for g in await tasks.direction_candidates(uow, leader)}

    async with db.uow() as uow:  # new numbers come from C's own series, which starts at 1
        clerk = await uow.session.get(User, b_clerk.id)
        assert clerk is not None
        third, _ = await register_incoming(
            uow, clerk, blobs, **incoming_fields(3, summary="Công văn sau sáp nhập về chuyển đổi số"), paper_only=True
        )
        await uow.commit()
    assert (
        third.agency_id == c.id
        and third.number == 1
        and third.register_id not in {docs["a"].register_id, docs["b"].register_id}
    )
    async with db.uow() as uow:  # nothing new for a merged unit
        with pytest.raises(Conflict, match="sáp nhập"):
            await tasks.create_meeting_task(
                uow,
                admin,
                title="Việc mới",
                instruction="",
                assignee={"unit_id": b.id},
                deadline=None,
                source={"test": 2},
            )
        with pytest.raises(Conflict, match="sáp nhập"):
            await org_merge.merge_units(uow, admin, [a.id], target_id=c.id)
    async with db.uow(readonly=True) as uow:  # C's register export lists C's own series only
        clerk = await uow.session.get(User, b_clerk.id)
        assert clerk is not None
        _, _, rows = await export.register_rows(uow, clerk, "in", local_date(utcnow()).year)
        assert [r[1] for r in rows] == [1] and len(rows) == 1
        assert (
            await uow.session.scalar(select(func.count()).select_from(Unit).where(Unit.id.in_([a.id, b.id]))) == 2
        )  # not deleted
    merge = (await _actions(db, "unit.merge"))[-1]
    assert merge.data["sources"] == ["BK", "TT"] and merge.data["counts"]["documents"] == 2


async def test_merge_refuses_target_inside_a_source(db: Database, org: Org) -> None:
    admin, u = org["admin"], org.units
    async with db.uow() as uow:
        with pytest.raises(Invalid, match="thuộc"):
            await org_merge.preview_merge(uow, admin, [u["UBND"].id], u["KT"].id)
        with pytest.raises(Invalid, match="ít nhất"):
            await org_merge.preview_merge(uow, admin, [], u["KT"].id)
