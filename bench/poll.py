"""Poll benchmark against the sandbox: what one poll of every gate costs with Prometheus.

Prints requests per poll (counted by the provider and by Prometheus itself), the median
time of one `sample()` of the sandbox's metrics next to the median time of the same
PromQL sent with plain httpx (concurrent, keep-alive: the floor), and their ratio.
Uses a running `make sandbox` if there is one, otherwise starts its own on free ports.
Run by hand or with `make bench`; asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "sandbox"))

import httpx  # noqa: E402
import launcher  # noqa: E402

from relconsole.clock import SystemClock  # noqa: E402
from relconsole.config import load_config  # noqa: E402
from relconsole.providers.prometheus import (  # noqa: E402
    MAX_THREADS,
    PrometheusMetrics,
    parse_settings,
    render,
)

POLLS = 60


@contextlib.contextmanager
def sandbox() -> Iterator[launcher.Sandbox]:
    running = launcher.Sandbox.load()
    if running is not None and running.pids and all(running.running().values()):
        print(f"using the running sandbox ({running.prometheus_url})")
        yield running
        return
    with tempfile.TemporaryDirectory(prefix="relconsole-bench-") as tmp:
        box = launcher.Sandbox(Path(tmp), launcher.Ports.free())
        started = time.monotonic()
        box.up(owner_pid=os.getpid())
        print(f"started a sandbox in {time.monotonic() - started:.1f}s ({box.prometheus_url})")
        try:
            yield box
        finally:
            box.down()


def served_queries(box: launcher.Sandbox) -> float:
    """Prometheus's own count of instant queries (its /metrics page is not one of them)."""
    _, body = launcher._http(f"{box.prometheus_url}/metrics", timeout=2.0)
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("prometheus_http_requests_total{")
               and 'handler="/api/v1/query"' in line)


async def measure(box: launcher.Sandbox) -> None:
    config = Path(tempfile.mkdtemp(prefix="relconsole-bench-")) / "relconsole.yaml"
    config.write_text(launcher.relconsole_config(box.ports, state_dir=str(config.parent)))
    cfg = load_config(config)
    metrics = cfg.plan.metrics
    settings = parse_settings(cfg.providers["metrics"], cfg.plan.call_timeout)
    prom = PrometheusMetrics(settings, dict(cfg.versions), SystemClock())
    queries = [render(m.query, cfg.versions[role]) for m in metrics
               for role in ("canary", "baseline")]

    # Both versions serving, so every query has data to compute.
    box.runtime("set weight app/stable 50; set weight app/canary 50")
    await asyncio.sleep(6)
    try:
        async with httpx.AsyncClient(base_url=box.prometheus_url, timeout=5.0) as client:

            sync_client = httpx.Client(base_url=box.prometheus_url, timeout=5.0)

            async def floor_async() -> None:
                answers = await asyncio.gather(*[
                    client.get("/api/v1/query", params={"query": q}) for q in queries])
                for answer in answers:
                    answer.raise_for_status()

            async def floor_sync() -> None:
                for q in queries:  # one after the other, on the loop: the simplest client
                    sync_client.get("/api/v1/query", params={"query": q}).raise_for_status()

            await floor_async()  # warm every connection pool
            await floor_sync()
            await prom.sample(metrics)
            ours: list[float] = []
            floors: dict[str, list[float]] = {"httpx async, concurrent": [],
                                              "httpx sync, one by one": []}
            sent_before, served_before = prom.requests_sent, served_queries(box)
            for _ in range(POLLS):  # interleaved, so drift hits all alike
                t = time.perf_counter()
                pairs = await prom.sample(metrics)
                ours.append(time.perf_counter() - t)
                for name, poll in (("httpx async, concurrent", floor_async),
                                   ("httpx sync, one by one", floor_sync)):
                    t = time.perf_counter()
                    await poll()
                    floors[name].append(time.perf_counter() - t)
            served = served_queries(box) - served_before
            sent = prom.requests_sent - sent_before
            sync_client.close()
            t = time.perf_counter()
            await prom.history(metrics, 60.0, 1.0)
            history = time.perf_counter() - t
    finally:
        box.runtime("set weight app/stable 100; set weight app/canary 0")
        await prom.close()

    usable = sum(p.canary.usable + p.baseline.usable for p in pairs.values())
    ours_ms = statistics.median(ours) * 1000
    medians = {name: statistics.median(v) * 1000 for name, v in floors.items()}
    best = min(medians, key=lambda name: medians[name])
    print(f"\n{len(metrics)} metrics × 2 versions = {len(queries)} queries, {POLLS} polls, "
          "canary at 50%")
    print(f"requests per poll      {sent / POLLS:.1f} sent by the provider; Prometheus served "
          f"{(served - 2 * POLLS * len(queries)) / POLLS:.1f} besides the two floors'")
    print(f"usable readings        {usable}/{len(queries)} in the last poll")
    print(f"one poll, median       {ours_ms:7.2f} ms  relconsole (prometheus-api-client, "
          f"{MAX_THREADS} threads)")
    for name, value in medians.items():
        print(f"same PromQL, median    {value:7.2f} ms  {name}")
    print(f"ratio to the floor     {ours_ms / medians[best]:7.2f} ×  (floor: {best})")
    print(f"p90                    {sorted(ours)[int(POLLS * 0.9)] * 1000:7.2f} ms vs "
          f"{sorted(floors[best])[int(POLLS * 0.9)] * 1000:.2f} ms")
    print(f"history on attach      {history * 1000:7.2f} ms for {len(queries)} range queries "
          "of 60 points")


def main() -> int:
    missing = launcher.missing_programs()
    if missing:
        print(f"bench/poll.py skipped: {' and '.join(missing)} not installed "
              "(`make sandbox` installs them as root)")
        return 0
    with sandbox() as box:
        asyncio.run(measure(box))
    return 0


if __name__ == "__main__":
    sys.exit(main())
