"""A remote site (điểm cầu) for tests/meetings/test_turn_relay.py, run inside its network namespace: an aiortc
participant on the real media WebSocket that reaches the server's media only through coturn.

``python tests/meetings/turn_site.py WS_URL udp|tcp|tls``: takes the TURN entry of that transport from the welcome
(aiortc uses the first TURN URL it is given, so it is given one), publishes a test pattern and a tone, decodes the
chair's video and prints one JSON line per half second: frames decoded, the selected candidate pair of the ``sub``
connection, restarts. With no new frame for ``STALL`` seconds it restarts ICE (``SfuClient.restart``), and again
after ``RETRY`` seconds while nothing comes. Exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import websockets
from aiortc import RTCIceServer, RTCPeerConnection

from meetings.sfu.client import SfuClient, consume
from meetings.sfu.synthetic import PatternTrack, ToneTrack

STALL, RETRY = 3.0, 12.0
SCHEMES = {"udp": ("turn:", "transport=udp"), "tcp": ("turn:", "transport=tcp"), "tls": ("turns:", "transport=tcp")}


def turn_entry(servers: list[dict[str, Any]], transport: str) -> list[RTCIceServer]:
    scheme, query = SCHEMES[transport]
    for server in servers:
        for url in server["urls"]:
            if url.startswith(scheme) and url.endswith(query):
                return [RTCIceServer(urls=[url], username=server.get("username"), credential=server.get("credential"))]
    raise SystemExit(f"no {transport} TURN URL in {servers}")


def selected_pair(pc: RTCPeerConnection) -> dict[str, Any] | None:
    """The nominated candidate pair of the connection's (bundled) ICE transport (aioice internals)."""
    transceivers = pc.getTransceivers()
    if not transceivers or transceivers[0].receiver.transport is None:
        return None
    connection = transceivers[0].receiver.transport.transport._connection
    pair = connection._nominated.get(1)
    if pair is None:
        return None
    local, remote = pair.local_candidate, pair.remote_candidate
    return {"local": local.type, "local_address": f"{local.host}:{local.port}", "remote": remote.type,
            "remote_address": f"{remote.host}:{remote.port}", "transport": local.transport}


async def main(url: str, transport: str) -> None:
    ws = await websockets.connect(url, max_size=2**22)
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    frames = {"n": 0, "last": time.monotonic()}
    consumers: list[Any] = []

    def on_track(transceiver: Any, track: Any) -> None:
        if track.kind == "video":
            received = consume(track)
            consumers.append(received)

    client = SfuClient(ice_servers=turn_entry(welcome["ice_servers"], transport), on_track=on_track)

    async def send(message: dict[str, Any]) -> None:
        await ws.send(json.dumps(message))

    client.send = send
    original = client._restarted

    async def restarted(message: dict[str, Any]) -> None:  # keep to one TURN transport with the fresh credentials
        message = {**message, "ice_servers": [{"urls": s.urls, "username": s.username, "credential": s.credential}
                                              for s in turn_entry(message["ice_servers"], transport)]}
        await original(message)

    client._restarted = restarted  # type: ignore[method-assign]

    async def read() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in ws:
                message = json.loads(text)
                if message["type"] == "ping":
                    await send({"type": "pong"})
                elif message["type"] == "state":
                    print(json.dumps({"state": message}), flush=True)
                else:
                    await client.handle(message)

    async def report() -> None:
        restarted_at = 0.0
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            count = sum(len(r.frames) for r in consumers)  # old consumers keep theirs: a running total
            if count != frames["n"]:
                frames["n"], frames["last"] = count, now
            stalled = now - frames["last"] > STALL and now - restarted_at > (RETRY if client.restarts else STALL)
            if stalled and frames["n"] + client.restarts > 0:
                restarted_at = now
                await client.restart()
            print(json.dumps({"you": welcome["you"], "frames": sum(len(r.frames) for r in consumers),
                              "restarts": client.restarts, "turn": client.ice_servers[0].urls[0],
                              "pair": selected_pair(client.sub_pc),
                              "pub_pair": selected_pair(client.pub_pc), "errors": client.errors}), flush=True)

    tasks = [asyncio.ensure_future(read()), asyncio.ensure_future(report())]
    await client.publish(PatternTrack(160, 120), ToneTrack(0.2))
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    for task in tasks:
        task.cancel()
    await ws.close()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
