"""Meeting reads use read-only units of work: on SQLite a tablet loading the room, a page of an agenda
PDF, its annotations or the minutes does not queue behind the meeting's votes and strokes (storage/db.py:
a read-write unit of work takes BEGIN IMMEDIATE and waits in the process's writer queue; a read-only one
reads its WAL snapshot at once). Same set-up as tests/web/test_readonly_pages.py: a real server in this
event loop, and a write transaction held open by another part of the process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import websockets
from sqlalchemy import update

from eoffice import identity
from eoffice.org import User
from meetings import annotations, documents, minutes
from storage.settings import Settings
from tests.conftest import serving
from tests.meetings.conftest import World, call
from web.app import create_app

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL readers never wait

DISCUSSION = "Thư ký ghi: Ủy ban nhân dân huyện Đông Triều báo cáo tiến độ chính quyền điện tử"
NOTE = "Đề nghị Sở Thông tin và Truyền thông bổ sung số liệu"


@dataclass
class Room:
    world: World
    host: str
    http: httpx.AsyncClient
    member: dict[str, str]
    secretary: dict[str, str]
    member_token: str
    mid: int
    vid: int
    item_id: int

    @property
    def base(self) -> str:
        return f"/api/meetings/{self.mid}"


async def _token(world: World, key: str) -> str:
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.users[key], "Máy tính bảng")
        await uow.commit()
    return token


@pytest.fixture
async def room(settings: Settings, world: World) -> AsyncIterator[Room]:
    m = await world.meeting(start=True)
    mid, item_id = m["meeting_id"], m["item_ids"][0]
    upload = await world.upload_pdf(world.organiser, [["Báo cáo chuyển đổi số huyện Đông Triều"], ["Phụ lục"]],
                                    "Báo cáo chuyển đổi số")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=upload,
                      item_id=item_id)
    await call(world.db, annotations.create, world.member, v.id, client_id="ipad-1-abcdefgh", page=1, kind="note",
               shape={"at": [120, 140]}, text=NOTE, visibility="meeting", meeting_id=mid)
    await call(world.db, minutes.save_discussion, world.secretary, item_id, text=DISCUSSION, revision=0)
    member, secretary = await _token(world, "member"), await _token(world, "secretary")
    async with serving(create_app(settings)) as port, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        yield Room(world, f"127.0.0.1:{port}", http, {"Authorization": f"Bearer {member}"},
                   {"Authorization": f"Bearer {secretary}"}, member, mid, v.id, item_id)


@contextlib.asynccontextmanager
async def held_write(world: World) -> AsyncIterator[None]:
    """Another part of the process is writing: BEGIN IMMEDIATE taken and held until the block ends."""
    async with world.db.uow() as writer:
        await writer.session.execute(update(User).where(User.username == "nguoingoai").values(title="Chuyên viên"))
        yield
        await writer.commit()


async def _media_welcome_and_state(r: Room) -> tuple[dict[str, object], dict[str, object]]:
    """The media socket's identity check and the room's restored state (mutes and floor from the record)."""
    url = f"ws://{r.host}/ws/meetings/{r.mid}/media?token={r.member_token}"
    async with websockets.connect(url) as ws:
        welcome = json.loads(await ws.recv())
        while True:
            state = json.loads(await ws.recv())
            if state["type"] == "state":
                return welcome, state


async def test_meeting_reads_do_not_wait_behind_an_open_write_transaction(room: Room) -> None:
    r = room
    b, v = r.base, f"{r.base}/versions/{r.vid}"
    member_reads = [
        f"/meetings/{r.mid}/room", f"/meetings/{r.mid}", "/meetings", f"/meetings/{r.mid}/documents/{r.vid}",
        "/api/meetings", b, "/api/meetings/directory", v, f"{v}/file", f"{v}/search?q=Đông Triều",
        f"{v}/annotations", f"{v}/annotations/people", f"{v}/annotated.pdf", f"{b}/video",
    ]
    secretary_reads = [f"{b}/minutes", f"{b}/minutes.pdf"]  # draft minutes: the secretary reads them
    reads = [(p, r.member) for p in member_reads] + [(p, r.secretary) for p in secretary_reads]
    for path, headers in reads:  # first use of each token (recorded, a write) and a warm server
        got = await r.http.get(path, headers=headers)
        assert got.status_code == 200, (path, got.text[:300])
    await _media_welcome_and_state(r)

    async with held_write(r.world):
        welcome, state = await asyncio.wait_for(_media_welcome_and_state(r), 10)
        assert welcome["type"] == "welcome" and state["roster"]
        answers = {}
        for path, headers in reads:
            got = await asyncio.wait_for(r.http.get(path, headers=headers), 10)
            assert got.status_code == 200, (path, got.text[:300])
            answers[path] = got
        assert "Họp UBND tỉnh thường kỳ tháng 12" in answers[f"/meetings/{r.mid}/room"].text
        assert [a["text"] for a in answers[f"{v}/annotations"].json()["annotations"]] == [NOTE]
        assert answers[f"{v}/annotated.pdf"].headers["x-annotations"] == "1"
        assert answers[f"{b}/minutes.pdf"].content.startswith(b"%PDF")
        assert answers[f"{b}/minutes"].json()["items"][str(r.item_id)]["discussion"] == DISCUSSION

        # a write meanwhile does wait for its turn (the held transaction is real)
        write = asyncio.create_task(r.http.post(f"{b}/speakers", json={}, headers=r.member))
        await asyncio.sleep(0.5)
        assert not write.done()
    assert (await asyncio.wait_for(write, 30)).status_code == 201


async def test_a_rendered_page_of_an_agenda_pdf_does_not_wait_behind_a_writer(room: Room) -> None:
    r = room
    v = f"{r.base}/versions/{r.vid}"
    pages = [f"{v}/pages/1?w=800", f"{v}/pages/1/words"]
    for path in pages:  # the first request renders the page and records it (a write)
        got = await r.http.get(path, headers=r.member)
        assert got.status_code == 200, (path, got.text[:300])
    async with held_write(r.world):
        for path in pages:
            got = await asyncio.wait_for(r.http.get(path, headers=r.member), 3)
            assert got.status_code == 200, path
