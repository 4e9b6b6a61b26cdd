"""A network namespace behind an impaired link, for tests (root only): the machinery of ``bench/sfu_links.py`` in
small.

A bridge in the root namespace (``10.98.0.1``, where the server under test listens) and one namespace on a veth
pair (``10.98.0.2``): ``tc`` HTB shapes both directions to ``rate_kbps`` (a ~200 ms byte FIFO behind it) and
``iptables -m statistic --mode random`` drops that fraction of UDP both ways. This kernel has no ``netem``, so no
delay here (the bench adds it in its sites' own processes). Everything is private addressing on our own interfaces:
nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

HOST_IP = "10.98.0.1"
SITE_IP = "10.98.0.2"
TOOLS = ("ip", "tc", "iptables")


def missing() -> str | None:
    """Why a test bed cannot be built here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        return f"{', '.join(absent)} not installed (make test installs iproute2 and iptables as root)"
    return None


def _sh(*args: str, check: bool = True) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Link:
    netns: str
    host_ip: str = HOST_IP
    site_ip: str = SITE_IP

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the site's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]


def _shape(dev: str, rate_kbps: int, netns: str | None = None) -> None:
    pre = ["ip", "netns", "exec", netns] if netns else []
    rate = f"{rate_kbps}kbit"
    _sh(*pre, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
    _sh(*pre, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", rate, "ceil", rate,
        "burst", "15k")
    _sh(*pre, "tc", "qdisc", "add", "dev", dev, "parent", "1:10", "bfifo", "limit",
        str(max(15000, rate_kbps * 1000 // 8 // 5)))


@contextlib.contextmanager
def impaired_link(rate_kbps: int | None, loss: float, name: str = "eolink", *, host_ip: str = HOST_IP,
                  site_ip: str = SITE_IP) -> Iterator[Link]:
    """A namespace ``name`` behind ``rate_kbps`` and ``loss`` (0..1) of UDP each way; removed afterwards.
    ``rate_kbps`` None and ``loss`` 0: a plain link (tests that add their own iptables rules). Tests that may run
    beside another test bed use their own ``name`` and addresses (another /24)."""
    bridge, host_end, site_end = f"{name}br", f"{name}h", f"{name}n"

    def down() -> None:
        _sh("ip", "netns", "del", name, check=False)
        _sh("ip", "link", "del", bridge, check=False)

    down()
    try:
        _sh("ip", "link", "add", bridge, "type", "bridge")
        _sh("ip", "addr", "add", f"{host_ip}/24", "dev", bridge)
        _sh("ip", "link", "set", bridge, "up")
        _sh("ip", "netns", "add", name)
        _sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", site_end)
        _sh("ip", "link", "set", site_end, "netns", name)
        _sh("ip", "link", "set", host_end, "master", bridge)
        _sh("ip", "link", "set", host_end, "up")
        _sh("ip", "netns", "exec", name, "ip", "addr", "add", f"{site_ip}/24", "dev", site_end)
        _sh("ip", "netns", "exec", name, "ip", "link", "set", site_end, "up")
        _sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        if rate_kbps is not None:
            _shape(host_end, rate_kbps)
            _shape(site_end, rate_kbps, name)
        for chain in ("INPUT", "OUTPUT") if loss > 0 else ():
            _sh("ip", "netns", "exec", name, "iptables", "-A", chain, "-p", "udp", "-m", "statistic", "--mode",
                "random", "--probability", str(loss), "-j", "DROP")
        yield Link(name, host_ip, site_ip)
    finally:
        down()
