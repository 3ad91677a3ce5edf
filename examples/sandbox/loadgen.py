"""The sandbox's load generator: a steady request rate at HAProxy's frontend.

Bounded on purpose: loopback targets only, at most `--max-inflight` requests open at once
(slow answers make it drop, not pile up), and a rate capped at 1000 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import sys
import time

MAX_RATE = 1000.0


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def one(host: str, port: int, counts: collections.Counter[str], timeout: float) -> None:
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET / HTTP/1.0\r\nHost: sandbox\r\nUser-Agent: sandbox-load\r\n\r\n")
            await writer.drain()
            status = await reader.readline()
            await reader.read()
        parts = status.split()
        counts[parts[1].decode() if len(parts) > 1 else "bad"] += 1
    except (TimeoutError, OSError):
        counts["failed"] += 1
    finally:
        if writer is not None:
            writer.close()


async def run(host: str, port: int, rate: float, max_inflight: int, timeout: float) -> None:
    counts: collections.Counter[str] = collections.Counter()
    inflight: set[asyncio.Task[None]] = set()
    interval = 1.0 / rate
    next_at = time.monotonic()
    report_at = next_at + 10.0
    while True:
        if len(inflight) < max_inflight:
            task = asyncio.ensure_future(one(host, port, counts, timeout))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        else:
            counts["dropped"] += 1
        next_at += interval
        now = time.monotonic()
        if now >= report_at:
            print(f"{time.strftime('%H:%M:%S')} {dict(sorted(counts.items()))}", flush=True)
            report_at = now + 10.0
        if next_at < now - 1.0:  # fell behind (a stalled machine): do not burst to catch up
            next_at = now
        await asyncio.sleep(max(0.0, next_at - now))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the frontend")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--max-inflight", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--tag", default="", help="marks the process as the sandbox's")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    if not loopback(host):
        sys.exit(f"loadgen: refusing to load {host}: loopback targets only")
    if not 0 < args.rate <= MAX_RATE:
        sys.exit(f"loadgen: rate must be in (0, {MAX_RATE:g}]")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(host, int(port), args.rate, max(1, args.max_inflight), args.timeout))


if __name__ == "__main__":
    main()
