"""One meeting of 60 sites over two SFU processes joined by relay legs (``meetings.sfu.cascade``), against the same
60 sites on one process, in the same run.

    .venv/bin/python bench/sfu_cascade.py [--quick] [--sites 60] [--publishers 60] [--window 20]

Arrangement. Each SFU is a process of its own (this file with ``--serve``) running the app's
:class:`~meetings.sfu.room.SfuRoom` (adaptive: Last-N video, audio selection) with the cascade's two ends, a relay
participant and a :class:`~meetings.sfu.cascade.RelayImport`, as ``eoffice serve`` does; signalling is the SFU's
JSON protocol over TCP lines (the app carries the same messages over WebSockets, and finds the other process
through Redis: neither costs anything per packet). Half the sites join process A, half process B; the first
``--publishers`` of them publish pre-encoded VP8 640x480 (~500 kbit/s, 30 fps) and Opus, the others only receive
(a meeting's listening sites). Sites run in client processes (bench/sfu.py's participants: replayed media, frames
reassembled without a decoder). ICE on 127.0.0.1.

Figures: ``cascade_server_cores`` is the CPU of both server processes over the window (``time.process_time`` of
each, all threads), ``baseline_server_cores`` the one process of the same meeting without a cascade, ``ratio``
cascade / baseline; what crossed each way (``legs``: tracks relayed A->B and B->A, each once); video frames the sites
received per second against what Last-N promises them; the load average. Prints one JSON line. The machine this
ran on may be shared: the load average says how busy it was; recheck on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import sfu as base
from meetings.sfu.adaptation import LAST_N
from meetings.sfu.cascade import RELAY_PREFIX, RelayImport, relay_exports
from meetings.sfu.loopback import enable_loopback_ice
from meetings.sfu.room import SfuRoom
from meetings.sfu.signalling import Message

CLIENT_PROCESSES = 4  # in both arrangements (split between the nodes): the same client-side load


# -- server process -----------------------------------------------------------------------------------------------


async def serve(node: str) -> None:
    enable_loopback_ice()
    room = SfuRoom(f"bench-{node}")
    imports: dict[str, RelayImport] = {}
    pumps: set[asyncio.Task[None]] = set()

    async def open_leg(port: int, origin: str) -> None:
        """This process's leg from the process listening on ``port``: its sites' tracks, published here."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        writer.write(json.dumps({"relay": node}).encode() + b"\n")

        async def send(message: Message) -> None:
            writer.write(json.dumps(message).encode() + b"\n")

        relay = imports[origin] = RelayImport(room, origin, send)

        async def pump() -> None:
            while line := await reader.readline():
                await relay.handle(json.loads(line))

        pumps.add(asyncio.ensure_future(pump()))

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = json.loads(await reader.readline())

        async def send(message: Message) -> None:
            writer.write(json.dumps(message).encode() + b"\n")

        if hello.get("control"):
            while line := await reader.readline():
                command = json.loads(line)
                if command.get("leg"):
                    await open_leg(int(command["leg"]), str(command["origin"]))
                reply: dict[str, Any] = {"cpu": time.process_time(), "wall": time.monotonic()}
                if command.get("stats"):
                    reply["stats"] = room.stats()
                    reply["exports"] = {k: len(v) for k, v in relay_exports(room).items()}
                    reply["imports"] = {k: len(v.pubs) for k, v in imports.items()}
                await send(reply)
            return
        relay = "relay" in hello
        pid = RELAY_PREFIX + hello["relay"] if relay else hello["participant"]
        try:
            participant = await room.join(pid, send, relay=relay)
            try:
                while line := await reader.readline():
                    await participant.handle(json.loads(line))
            finally:
                await room.leave(pid)
        except (ConnectionError, asyncio.CancelledError):
            pass

    server = await asyncio.start_server(connection, "127.0.0.1", 0, limit=2**22)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()
    for task in pumps:
        task.cancel()
    for relay in imports.values():
        await relay.close()
    await room.close()


class Server(base.Server):
    @classmethod
    async def start(cls, mode: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", mode, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), 60))
        return cls(process, port)

    async def command(self, **command: Any) -> dict[str, Any]:
        await self.sample()  # opens the control connection
        assert self._control is not None
        reader, writer = self._control
        writer.write(json.dumps(command).encode() + b"\n")
        reply: dict[str, Any] = json.loads(await reader.readline())
        return reply


# -- clients ------------------------------------------------------------------------------------------------------


async def serve_clients(port: int, publishers: int, pids: list[str]) -> None:
    """One client process: its sites join the server on ``port``; the first ``publishers`` publish."""
    enable_loopback_ice()
    media = base.load_media()
    measure = base.Measure()
    people = [base.Participant(pid, measure, "cascade") for pid in pids]
    for n, person in enumerate(people):
        await person.join(port, "sfu")
        if n < publishers:
            await person.publish(*media)
            await person.client.published.wait()
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    answer({"ready": True})
    cpu = wall = 0.0
    while line := await reader.readline():
        command = json.loads(line)["cmd"]
        if command == "status":
            for person in people:
                base.enlarge_receive_buffers(person.client.sub_pc)
            answer({"started": sum(1 for _, _, kind in measure.first_frame if kind == "video")})
        elif command == "start":
            measure.frames.clear()
            cpu, wall = time.process_time(), time.monotonic()
            measure.recording = True
            answer({"ok": True})
        elif command == "stop":
            measure.recording = False
            answer({"cpu": time.process_time() - cpu, "wall": time.monotonic() - wall, "frames": dict(measure.frames)})
    for person in people:
        await person.close()


class Clients(base.ClientProcess):
    @classmethod
    async def start_sites(cls, port: int, publishers: int, participants: list[str]) -> Clients:
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--clients", str(port), str(publishers), *participants,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26,
        )  # fmt: skip
        client = cls(process)
        await client.read(180)
        return client


# -- scenario -----------------------------------------------------------------------------------------------------


async def meeting(nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    """``args.sites`` sites over ``nodes`` server processes (1: the baseline, 2: the cascade)."""
    servers = [await Server.start(name) for name in "ab"[:nodes]]
    clients: list[Clients] = []
    try:
        if nodes == 2:  # a full mesh of legs, as the Redis directory would make it
            a, b = servers
            await b.command(leg=a.port, origin="a")
            await a.command(leg=b.port, origin="b")
        sites = [f"diem-cau-{n:02d}" for n in range(args.sites)]
        publishing = set(sites[: args.publishers])
        per_node = [sites[i::nodes] for i in range(nodes)]
        for server, group in zip(servers, per_node, strict=True):
            for k in range(CLIENT_PROCESSES // nodes):
                chunk = group[k::CLIENT_PROCESSES // nodes]
                pubs = [s for s in chunk if s in publishing]
                chunk = pubs + [s for s in chunk if s not in publishing]  # publishers first (see serve_clients)
                if chunk:
                    clients.append(await Clients.start_sites(server.port, len(pubs), chunk))
        # each site gets at most LAST_N videos (and the audio selection): wait for that many streams to start
        want = sum(min(LAST_N, args.publishers - (s in publishing)) for s in sites)
        deadline = time.monotonic() + 120
        while (started := sum([(await c.ask("status"))["started"] for c in clients])) < want:
            if time.monotonic() > deadline:
                print(f"   only {started} of {want} video streams started", file=sys.stderr)
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(args.warmup)
        load_before = os.getloadavg()[0]
        before = [await s.command(stats=True) for s in servers]
        await asyncio.gather(*(c.ask("start") for c in clients))
        await asyncio.sleep(args.window)
        results = await asyncio.gather(*(c.ask("stop") for c in clients))
        after = [await s.command(stats=True) for s in servers]
        cores = [(y["cpu"] - x["cpu"]) / (y["wall"] - x["wall"]) for x, y in zip(before, after, strict=True)]
        if os.environ.get("SFU_CASCADE_DEBUG"):  # developer aid: what each server forwarded to whom
            for x, y in zip(before, after, strict=True):
                for pid, p in y["stats"].items():
                    old = {(s["source"], s["kind"]): s["frames_sent"] for s in x["stats"].get(pid, {}).get("slots", [])}
                    print(pid, [(s["source"], s["kind"], s["frames_sent"] - old.get((s["source"], s["kind"]), 0))
                                for s in p["slots"]], file=sys.stderr)
        frames: collections.Counter[str] = collections.Counter()
        for r in results:
            frames.update(r["frames"])
        window = statistics_mean([r["wall"] for r in results])
        return {
            "server_cores": round(sum(cores), 3),
            "per_server_cores": [round(c, 3) for c in cores],
            "legs": {"a->b": after[0].get("exports", {}).get("b"), "b->a": after[-1].get("exports", {}).get("a")}
            if nodes == 2 else None,
            # video frames the sites got against what Last-N gives them (30 fps from each of up to LAST_N sites)
            "video_delivered": round(frames["cascade-video"] / window / (base.FPS * want), 3),
            "server_frames_in": [sum(p["frames_in"] for x in s["stats"].values() for p in x["published"]
                                     if p["kind"] == "video") for s in after],
            "client_cores": round(sum(r["cpu"] for r in results) / window, 3),
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
    finally:
        for client in clients:
            await client.stop()
        for server in servers:
            await server.stop()


def statistics_mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 1.0


async def main(args: argparse.Namespace) -> dict[str, Any]:
    base.load_media()  # encode once, before anything is measured
    cascade = await meeting(2, args)
    single = await meeting(1, args)
    ratio = round(cascade["server_cores"] / single["server_cores"], 3) if single["server_cores"] else None
    return {
        "bench": "sfu_cascade", "cascade_sites": args.sites, "publishers": args.publishers, "window_s": args.window,
        "cascade_server_cores": cascade["server_cores"], "baseline_server_cores": single["server_cores"],
        "ratio": ratio, "cascade": cascade, "baseline": single,
        "target": {"cascade_sites": 60, "cascade_server_cores": 1.5},
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "note": "clients run on the same machine as the servers; on a loaded shared machine recheck on a quiet one",
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small version: 12 sites, 4 publishing, 8 s window")
    parser.add_argument("--sites", type=int, help="sites in the meeting (default 60)")
    parser.add_argument("--publishers", type=int, help="sites that publish (default: all)")
    parser.add_argument("--window", type=float, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after every stream started")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--clients", nargs="+", help=argparse.SUPPRESS)  # PORT PUBLISHERS PARTICIPANT...
    args = parser.parse_args(argv)
    args.sites = args.sites or (12 if args.quick else 60)
    args.publishers = min(args.sites, args.publishers or (4 if args.quick else args.sites))
    args.window = args.window or (8.0 if args.quick else 20.0)
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.serve:
        asyncio.run(serve(arguments.serve))
    elif arguments.clients:
        asyncio.run(serve_clients(int(arguments.clients[0]), int(arguments.clients[1]), arguments.clients[2:]))
    else:
        print(json.dumps(asyncio.run(main(arguments)), ensure_ascii=False))
