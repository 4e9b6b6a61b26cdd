"""Loopback ICE for tests and benchmarks: only 127.0.0.1 host candidates.

aioice (0.13, used by aiortc 1.16) builds host candidates from ``aioice.ice.get_host_addresses``, which leaves out
127.0.0.1 on purpose. Two peers on one machine then depend on whatever other interface the machine has (none in a
sandboxed CI job). For tests we replace that function so every peer offers exactly one IPv4 host candidate,
127.0.0.1: connectivity checks succeed on the first pair, nothing leaves the machine, and results do not depend on
the network. Pass ``RTCConfiguration(iceServers=[])`` as well, so no public STUN server is contacted.

Never use this in production: a server offering only 127.0.0.1 is unreachable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aioice.ice

LOOPBACK = "127.0.0.1"
AIOICE_HOST_ADDRESSES = aioice.ice.get_host_addresses  # aioice's own, which leaves out 127.0.0.1


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [LOOPBACK] if use_ipv4 else []


@contextlib.contextmanager
def loopback_ice() -> Iterator[None]:
    """Within the block, new ICE agents gather only the 127.0.0.1 host candidate."""
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _loopback_addresses
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def enable_loopback_ice() -> None:
    """Patch for the rest of the process (benchmark subprocesses)."""
    aioice.ice.get_host_addresses = _loopback_addresses
