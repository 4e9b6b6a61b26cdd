"""Annotations over HTTP and the WebSocket hub, against a real uvicorn server (SQLite and PostgreSQL):
what another participant's socket receives, the API listing, the snapshot and the annotated copy never
contain someone's private annotation; conflicts answer 409 with the current state."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pymupdf
import pytest
import uvicorn
from sqlalchemy import select, update
from websockets.asyncio.client import ClientConnection, connect

from eoffice import identity
from eoffice.audit import AuditEntry
from meetings import annotations, documents
from storage.settings import Settings
from tests.conftest import free_port
from tests.meetings.conftest import World, call
from web.app import create_app

PRIVATE = "Ghi chú riêng tư: cần hỏi lại Sở Tài chính về số liệu xã Bình Khê"
SHARED = "Chia sẻ cả cuộc họp: đề nghị Ủy ban nhân dân huyện Đông Triều giải trình"
NAMED = "Chỉ gửi ông Thắng: số liệu quý IV"


@pytest.fixture
async def server(settings: Settings, world: World) -> AsyncIterator[str]:
    app = create_app(settings)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        await asyncio.to_thread(thread.join, 20)


async def _token(world: World, key: str) -> str:
    async with world.db.uow() as uow:
        token = await identity.create_token(uow, None, world.users[key])
        await uow.commit()
    return token


class Tablet:
    """One person's HTTP client and WebSocket, keeping every raw frame the socket received."""

    def __init__(self, host: str, token: str) -> None:
        self.host = host
        self.headers = {"Authorization": f"Bearer {token}"}
        self.http = httpx.AsyncClient(base_url=f"http://{host}", headers=self.headers, timeout=30)
        self.ws: ClientConnection | None = None
        self.raw: list[str] = []
        self.frames: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = await connect(f"ws://{self.host}/ws", additional_headers=self.headers)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            self.raw.append(str(raw))
            self.frames.append(json.loads(raw))

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def wait_for(self, pred: Any, within: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for f in self.frames:
                if pred(f):
                    return f
            await asyncio.sleep(0.02)
        raise AssertionError(f"no such frame; got {self.frames}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()
        await self.http.aclose()


async def test_private_annotations_never_reach_anyone_else(server: str, world: World) -> None:
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    upload = await world.upload_pdf(world.organiser, [["Báo cáo chuyển đổi số huyện Đông Triều"], ["Phụ lục"]],
                                    "Báo cáo")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=upload,
                      item_id=m["item_ids"][0])
    owner, other, chair = [Tablet(server, await _token(world, k)) for k in ("member", "member2", "chair")]
    base = f"/api/meetings/{mid}"
    try:
        # a tablet reconnecting after a restart subscribes before any request: the hub knows annot: already
        await owner.open()
        await owner.send({"op": "subscribe", "topic": f"annot:v:{v.id}"})
        await owner.wait_for(lambda f: f.get("type") == "subscribed" and f["topic"] == f"annot:v:{v.id}")
        await owner.close()
        owner = Tablet(server, await _token(world, "member"))
        listing = (await other.http.get(f"{base}/versions/{v.id}/annotations")).json()
        assert listing["annotations"] == [] and listing["topics"]["shared"] == f"annot:v:{v.id}"
        await other.http.get(base)  # the room's handlers register the meeting topics with the hub
        for tablet, who in ((owner, world.member), (other, world.member2), (chair, world.chair)):
            await tablet.open()
            for topic in (f"annot:v:{v.id}", f"annot:u:{who.id}", f"meeting:{mid}"):
                await tablet.send({"op": "subscribe", "topic": topic})
                await tablet.wait_for(lambda f, t=topic: f.get("type") == "subscribed" and f["topic"] == t)
        # another person's own topic is refused
        await other.send({"op": "subscribe", "topic": f"annot:u:{world.member.id}"})
        err = await other.wait_for(lambda f: f.get("type") == "error")
        assert "không có quyền" in err["message"]

        def body(n: int, **kw: Any) -> dict[str, Any]:
            return {"client_id": f"ipad-{n}-abcdefgh", "page": 1, "kind": "note", "shape": {"at": [120, 140]}, **kw}

        r = await owner.http.post(f"{base}/versions/{v.id}/annotations", json=body(1, text=PRIVATE))
        assert r.status_code == 201 and r.json()["visibility"] == "private", r.text
        private = r.json()
        again = await owner.http.post(f"{base}/versions/{v.id}/annotations", json=body(1, text=PRIVATE))
        assert again.status_code == 200 and again.json()["id"] == private["id"]  # an offline replay
        r = await owner.http.post(f"{base}/versions/{v.id}/annotations", json=body(
            2, kind="ink", visibility="meeting", text=SHARED,
            shape={"strokes": [[[100, 100, 0.5], [140, 120, 0.8], [180, 110, 0.6]]], "width": 2}))
        shared = r.json()
        r = await owner.http.post(f"{base}/versions/{v.id}/annotations", json=body(
            3, visibility="people", recipient_ids=[world.member2.id], text=NAMED))
        named = r.json()
        assert named["recipient_ids"] == [world.member2.id]

        # the owner's socket gets all three; the others get the shared one, member2 also the named one
        await owner.wait_for(lambda f: f.get("type") == "annotation.saved"
                             and f["data"]["annotation"]["id"] == private["id"])
        await other.wait_for(lambda f: f.get("type") == "annotation.saved"
                             and f["data"]["annotation"]["id"] == named["id"])
        await chair.wait_for(lambda f: f.get("type") == "annotation.saved"
                             and f["data"]["annotation"]["id"] == shared["id"])
        got = await other.wait_for(lambda f: f.get("type") == "annotation.saved"
                                   and f["data"]["annotation"]["id"] == shared["id"])
        assert got["topic"] == f"annot:v:{v.id}" and got["data"]["annotation"]["text"] == SHARED

        # the private one becomes shared and private again: the others see it come and go (ids only)
        r = await owner.http.patch(f"{base}/annotations/{private['id']}", json={"revision": 1, "visibility": "meeting",
                                                                                 "text": "Đã sửa"})
        assert r.status_code == 200 and r.json()["revision"] == 2
        r = await owner.http.patch(f"{base}/annotations/{private['id']}", json={"revision": 2, "visibility": "private",
                                                                                 "text": PRIVATE})
        assert r.status_code == 200
        hidden = await chair.wait_for(lambda f: f.get("type") == "annotation.hidden")
        assert hidden["data"] == {"id": private["id"], "version_id": v.id, "revision": 3}

        # a stale change is a 409 with the current state
        stale = await owner.http.patch(f"{base}/annotations/{private['id']}", json={"revision": 1, "text": "cũ"})
        assert stale.status_code == 409
        assert stale.json()["current"]["revision"] == 3 and stale.json()["current"]["text"] == PRIVATE
        bad = await owner.http.post(f"{base}/versions/{v.id}/annotations", json=body(4, shape={"at": [5000, 1]}))
        assert bad.status_code == 400 and "ngoài trang" in bad.json()["message"]
        # someone else's annotation: read only (shared) or nonexistent (private)
        assert (await other.http.delete(f"{base}/annotations/{shared['id']}?revision=1")).status_code == 403
        assert (await other.http.delete(f"{base}/annotations/{private['id']}?revision=3")).status_code == 404

        # the API listing
        for tablet, expected in ((other, {shared["id"], named["id"]}), (chair, {shared["id"]}),
                                 (owner, {private["id"], shared["id"], named["id"]})):
            rows = (await tablet.http.get(f"{base}/versions/{v.id}/annotations")).json()["annotations"]
            assert {a["id"] for a in rows} == expected
        mine = (await other.http.get(f"{base}/versions/{v.id}/annotations?scope=mine")).json()["annotations"]
        assert mine == []

        # the snapshot of a client too far ahead (a restored database) has no private annotation either
        await chair.send({"op": "subscribe", "topic": f"annot:v:{v.id}", "since": 10**6})
        snap = await chair.wait_for(lambda f: f.get("type") == "snapshot")
        assert [a["id"] for a in snap["data"]["annotations"]] == [shared["id"]]

        # the annotated copy
        copy = await other.http.get(f"{base}/versions/{v.id}/annotated.pdf")
        assert copy.status_code == 200 and copy.headers["content-type"] == "application/pdf"
        assert copy.headers["x-save-method"] == "incremental" and copy.headers["x-annotations"] == "2"
        pdf = pymupdf.open(stream=copy.content, filetype="pdf")
        contents = {a.info["content"] for p in list(pdf) for a in p.annots()}
        assert contents == {SHARED, NAMED}
        own_copy = await owner.http.get(f"{base}/versions/{v.id}/annotated.pdf")
        assert PRIVATE in {a.info["content"] for p in list(pymupdf.open(stream=own_copy.content, filetype="pdf"))
                           for a in p.annots()}

        # deletion reaches the audience, with ids only
        assert (await owner.http.delete(f"{base}/annotations/{shared['id']}?revision=1")).status_code == 200
        gone = await chair.wait_for(lambda f: f.get("type") == "annotation.deleted")
        assert gone["data"]["id"] == shared["id"] and "annotation" not in gone["data"]

        await asyncio.sleep(0.3)
        # nothing private, ever, in any frame the other two sockets received; nothing on the room topic
        for tablet in (other, chair):
            assert not any(PRIVATE in raw for raw in tablet.raw)
            assert not any(f.get("topic") == f"meeting:{mid}" and str(f.get("type", "")).startswith("annotation")
                           for f in tablet.frames)
        assert not any(NAMED in raw for raw in chair.raw)
        assert any(PRIVATE in raw for raw in owner.raw)
    finally:
        for tablet in (owner, other, chair):
            await tablet.close()


async def test_outsiders_and_confidential_items_through_the_api(server: str, world: World) -> None:
    m = await world.meeting(start=True, confidential_for=["member2"])
    mid = m["meeting_id"]
    upload = await world.upload_pdf(world.organiser, [["Phương án nhân sự"]], "Nhân sự")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=upload,
                      item_id=m["item_ids"][-1])
    outsider, member, member2 = [Tablet(server, await _token(world, k)) for k in ("outsider", "member", "member2")]
    try:
        base = f"/api/meetings/{mid}/versions/{v.id}"
        for t in (outsider, member):
            assert (await t.http.get(f"{base}/annotations")).status_code == 403
            assert (await t.http.get(f"{base}/annotated.pdf")).status_code == 403
            r = await t.http.post(f"{base}/annotations", json={"client_id": "abcdefgh12", "page": 1, "kind": "note",
                                                               "shape": {"at": [1, 1]}})
            assert r.status_code == 403
        people = (await member2.http.get(f"{base}/annotations/people")).json()["people"]
        names = {p["full_name"] for p in people}
        assert world.chair.full_name in names and world.member.full_name not in names  # not on the item's list
        assert (await member2.http.get(f"/api/meetings/{mid + 1}/versions/{v.id}/annotations")).status_code in (403,
                                                                                                               404)
        assert annotations.version_topic(v.id) == f"annot:v:{v.id}"
    finally:
        for t in (outsider, member, member2):
            await t.close()


async def test_annotation_commands_over_the_websocket(server: str, world: World) -> None:
    """The tablet's own socket carries create, update and delete (the same functions as HTTP), answered after the
    commit; private ones still reach nobody else; stale revisions, outsiders and a logged-out session are refused."""
    m = await world.meeting(start=True, confidential_for=["member2"])
    mid = m["meeting_id"]
    upload = await world.upload_pdf(world.organiser, [["Báo cáo chuyển đổi số huyện Đông Triều"]], "Báo cáo")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=upload,
                      item_id=m["item_ids"][0])
    upload = await world.upload_pdf(world.organiser, [["Phương án nhân sự"]], "Nhân sự")
    _, secret_v = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=upload,
                             item_id=m["item_ids"][-1])
    member_token = await _token(world, "member")
    owner, other, outsider = [Tablet(server, t) for t in (member_token, await _token(world, "member2"),
                                                          await _token(world, "outsider"))]
    counter = iter(range(1, 1000))

    async def command(tablet: Tablet, op: str, **fields: Any) -> dict[str, Any]:
        rid = f"r{next(counter)}"
        await tablet.send({"op": op, "id": rid, "meeting_id": mid, **fields})
        return await tablet.wait_for(lambda f: f.get("type") == "reply" and f.get("id") == rid)

    def body(n: int, **kw: Any) -> dict[str, Any]:
        return {"client_id": f"ws-{n}-abcdefgh", "page": 1, "kind": "note", "shape": {"at": [120, 140]}, **kw}

    try:
        for tablet, who in ((owner, world.member), (other, world.member2), (outsider, world.outsider)):
            await tablet.open()
            for topic in (f"annot:v:{v.id}", f"annot:u:{who.id}"):
                await tablet.send({"op": "subscribe", "topic": topic})
                await tablet.wait_for(lambda f, t=topic: f.get("topic") == t and f.get("type") in ("subscribed",
                                                                                                   "error"))

        private = await command(owner, "annotation.create", version_id=v.id, **body(1, text=PRIVATE))
        assert private["ok"] and private["data"]["created"] and private["data"]["annotation"]["visibility"] == "private"
        pid = private["data"]["annotation"]["id"]
        replay = await command(owner, "annotation.create", version_id=v.id, **body(1, text=PRIVATE))
        assert replay["ok"] and not replay["data"]["created"] and replay["data"]["annotation"]["id"] == pid
        markup = "<img src=x onerror=alert(1)> Đông Triều"
        shared = await command(owner, "annotation.create", version_id=v.id, **body(
            2, kind="ink", visibility="meeting", text=markup,
            shape={"strokes": [[[100, 100, 0.5], [140, 120, 0.8], [180, 110, 0.6]]], "width": 2}))
        assert shared["ok"], shared
        sid = shared["data"]["annotation"]["id"]
        got = await other.wait_for(lambda f: f.get("type") == "annotation.saved"
                                   and f["data"]["annotation"]["id"] == sid)
        assert got["data"]["annotation"]["text"] == markup  # stored as text; the page renders it as text

        # update: a stale revision answers 409 with the current state; a good one moves the revision on
        stale = await command(owner, "annotation.update", annotation_id=pid, revision=7, text="cũ")
        assert not stale["ok"] and stale["status"] == 409 and stale["current"]["text"] == PRIVATE
        moved = await command(owner, "annotation.update", annotation_id=pid, revision=1, shape={"at": [200, 210]})
        assert moved["ok"] and moved["data"]["annotation"]["revision"] == 2
        bad = await command(owner, "annotation.create", version_id=v.id, **body(3, shape={"at": [5000, 1]}))
        assert not bad["ok"] and bad["status"] == 400 and "ngoài trang" in bad["message"]

        # someone else's: read only (shared) or nonexistent (private); outsiders and the confidential item: 403
        assert (await command(other, "annotation.delete", annotation_id=sid, revision=1))["status"] == 403
        assert (await command(other, "annotation.update", annotation_id=pid, revision=2, text="x"))["status"] == 404
        assert (await command(outsider, "annotation.create", version_id=v.id, **body(4)))["status"] == 403
        assert (await command(owner, "annotation.create", version_id=secret_v.id, **body(5)))["status"] == 403
        wrong = await command(owner, "annotation.create", version_id=v.id, **{**body(6), "meeting_id": mid + 1})
        assert not wrong["ok"] and wrong["status"] in (403, 404)
        await owner.send({"op": "annotation.create", "version_id": v.id, "meeting_id": mid, **body(7)})  # no id
        assert "mã yêu cầu" in (await owner.wait_for(lambda f: f.get("type") == "error"))["message"]

        deleted = await command(owner, "annotation.delete", annotation_id=sid, revision=1)
        assert deleted["ok"] and deleted["data"] == {"id": sid, "version_id": v.id}
        await other.wait_for(lambda f: f.get("type") == "annotation.deleted" and f["data"]["id"] == sid)

        # the token the socket was opened with is revoked: its next command is refused like a request would be
        async with world.db.uow() as uow:
            await uow.session.execute(update(identity.ApiToken).where(
                identity.ApiToken.token_hash == identity.sha256(member_token)).values(revoked=True))
            await uow.commit()
        refused = await command(owner, "annotation.create", version_id=v.id, **body(8))
        assert not refused["ok"] and refused["status"] == 401

        await asyncio.sleep(0.3)
        assert not any(PRIVATE in raw for raw in other.raw + outsider.raw)
        assert not any(f.get("type") == "annotation.saved" for f in outsider.frames)
    finally:
        for tablet in (owner, other, outsider):
            await tablet.close()


async def test_chair_withdraws_a_shared_mark_from_everyone(server: str, world: World) -> None:
    """Issue 22: the chair takes a member's shared mark off everyone's page; the owner keeps it, private; a
    member cannot do it; the audit names the owner."""
    m = await world.meeting(start=True)
    mid = m["meeting_id"]
    upload = await world.upload_pdf(world.organiser, [["Tờ trình về quy hoạch xã Yên Đức"]], "Tờ trình")
    _, v = await call(world.db, documents.add_document, world.organiser, world.blobs, mid, upload_id=upload,
                      item_id=m["item_ids"][0])
    owner, other, chair = [Tablet(server, await _token(world, k)) for k in ("member", "member2", "chair")]
    base = f"/api/meetings/{mid}"
    try:
        r = await owner.http.post(f"{base}/versions/{v.id}/annotations", json={
            "client_id": "ipad-w1-abcdefgh", "page": 1, "kind": "note", "shape": {"at": [80, 90]},
            "visibility": "meeting", "text": SHARED})
        shared = r.json()
        await other.http.get(base)
        await other.open()
        await other.send({"op": "subscribe", "topic": f"annot:v:{v.id}"})
        await other.wait_for(lambda f: f.get("type") == "subscribed")
        await owner.open()
        await owner.send({"op": "subscribe", "topic": f"annot:u:{world.member.id}"})
        await owner.wait_for(lambda f: f.get("type") == "subscribed")

        refused = await other.http.post(f"{base}/annotations/{shared['id']}/withdraw")
        assert refused.status_code == 403 and "chủ tọa" in refused.json()["message"]
        own = await owner.http.post(f"{base}/annotations/{shared['id']}/withdraw")
        assert own.status_code == 403  # the owner is no chair either: they change visibility themselves

        r = await chair.http.post(f"{base}/annotations/{shared['id']}/withdraw")
        assert r.status_code == 200 and r.json()["visibility"] == "private", r.text
        gone = await other.wait_for(lambda f: f.get("type") == "annotation.hidden")
        assert gone["data"]["id"] == shared["id"]
        told = await owner.wait_for(lambda f: f.get("type") == "annotation.withdrawn")
        assert told["data"]["by"] == world.chair.full_name

        for tablet, expected in ((other, set()), (chair, set()), (owner, {shared["id"]})):
            rows = (await tablet.http.get(f"{base}/versions/{v.id}/annotations")).json()["annotations"]
            assert {a["id"] for a in rows} == expected
        again = await chair.http.post(f"{base}/annotations/{shared['id']}/withdraw")
        assert again.status_code == 404  # private now: the chair no longer sees it at all
        async with world.db.uow(readonly=True) as uow:
            entries = (await uow.session.scalars(select(AuditEntry).where(
                AuditEntry.action == "meeting.annotation.withdraw"))).all()
        assert [(e.actor_id, e.data["owner_id"], e.data["annotation_id"]) for e in entries] == [
            (world.chair.id, world.member.id, shared["id"])]
    finally:
        for tablet in (owner, other, chair):
            await tablet.close()
