"""web.gc_policy: survivors of a full collection are frozen, so the next one walks only what is new;
cycles among frozen objects are reclaimed by the maintenance pass, and only when the server is quiet."""

from __future__ import annotations

import asyncio
import gc
import weakref

from web.gc_policy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


async def test_full_collections_freeze_their_survivors_and_maintenance_reclaims_frozen_cycles() -> None:
    busy = True
    policy = GcPolicy(busy=lambda: busy, maintenance=0.0, check=0.05)
    policy.start()
    try:
        assert gc.get_freeze_count() > 0  # what start-up built
        keep = [Node() for _ in range(1000)]
        before = gc.get_freeze_count()
        gc.collect(2)  # a full collection, as the interpreter runs one now and then
        await asyncio.sleep(0)  # the freeze is scheduled on the loop
        await asyncio.sleep(0)
        assert policy.freezes >= 1 and gc.get_freeze_count() >= before + len(keep)

        ref = _cycle()  # a cycle that survives a full collection (still referenced) ...
        holder = [ref()]
        gc.collect(2)
        await asyncio.sleep(0.01)
        holder.clear()  # ... then becomes garbage while frozen
        gc.collect()
        assert ref() is not None  # frozen: ordinary collections leave it alone
        await asyncio.sleep(0.2)
        assert ref() is not None and policy.maintained == 0  # the server is busy: no long pause now
        busy = False
        for _ in range(100):
            if ref() is None:
                break
            await asyncio.sleep(0.02)
        assert ref() is None and policy.maintained >= 1  # the quiet moment's pass reclaimed it
        del keep
    finally:
        await policy.stop()
    assert gc.get_freeze_count() == 0 and policy._on_gc not in gc.callbacks
