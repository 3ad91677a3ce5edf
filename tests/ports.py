"""Listening ports for the services the tests start, that no other socket will take.

A port found free by binding to port 0 comes from the kernel's ephemeral range, the range
every outgoing connection takes its local port from. A service that binds it a moment
later, or again after a restart (the fault tests stop and start Prometheus all session
long), can find it taken by some client's connection in between, and with two xdist
workers there are twice the clients. So the ports come from below that range, and each
worker has a slice of its own, so two workers never pick the same port either.
"""

from __future__ import annotations

import os
import random
import re
import socket
from pathlib import Path

BASE = 20000  # above the sandbox's own defaults (18080-19090): a developer's sandbox stays
SLICE = 2000  # ports per worker
_given: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _worker_index() -> int:
    found = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(found.group(1)) if found else 0


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports free now, from this worker's slice."""
    low = BASE + _worker_index() * SLICE
    high = min(low + SLICE, _ephemeral_start())
    if high - low < count * 4:  # many workers, or an unusual port range
        return _ephemeral_ports(count)
    # A random start: two test runs on one machine (two developers) rarely meet either.
    span = range(low, high)
    start = random.randrange(len(span))
    chosen: list[int] = []
    for i in range(len(span)):
        port = span[(start + i) % len(span)]
        if port not in _given and _bindable(port):
            chosen.append(port)
            if len(chosen) == count:
                _given.update(chosen)
                return chosen
    return _ephemeral_ports(count)
