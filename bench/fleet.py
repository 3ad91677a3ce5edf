"""The fleet table under a storm of watch events: 200 Rollouts changing at once.

The real `FleetApp` (headless, 120×40) is fed 200 Rollouts in two contexts, then a storm:
every 5 ms ten Rollouts change (weights, steps, now and then the phase), for a few
seconds. Measured for relconsole's screen (events coalesced to at most four redraws a
second, rows updated in place) and, in the same run, for two references: a redraw per
event (in place, not coalesced), and a full table rebuild per event (what a view that
clears and refills its table on every watch event does). Printed: events delivered,
redraws, the time of one update, CPU seconds per thousand events (Textual's painting
included), and the ratios. Run by hand or with `make bench`; asserts nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relconsole.fleet.rows import FleetFeed, FleetRow, LastAction, RolloutTarget
from relconsole.tui.fleet import FleetApp, FleetTable

ROLLOUTS = 200
STORM = 4.0  # seconds
EVERY = 0.005  # seconds between two bursts
PER_BURST = 10  # Rollouts changed per burst
NOW = 1_800_000_000.0
PHASES = ("Healthy", "Progressing", "Paused", "Degraded")


class Static:
    columns = ("context", "namespace", "name", "phase", "step", "weight", "age", "last")
    title = "bench"

    async def run(self, feed: FleetFeed) -> None:
        await asyncio.Event().wait()


def fleet() -> list[FleetRow]:
    rng = random.Random(12)
    rows = []
    for i in range(ROLLOUTS):
        ctx, ns = ("prod-eu", "prod-us")[i % 2], f"team-{i % 17}"
        name = f"svc-{i:03d}"
        last = LastAction("abort", "alice@bastion", "5xx", NOW - 300) if i % 9 == 0 else None
        rows.append(FleetRow(
            key=f"{ctx}/{ns}/{name}", name=name, phase=rng.choice(PHASES), context=ctx,
            namespace=ns, step="1/8", progress=1 / 8, set_weight=10, actual_weight=10,
            created=NOW - rng.randrange(60, 90 * 86400), last=last,
            target=RolloutTarget(name, ns, ctx, None)))
    return rows


class PerEvent(FleetApp):
    """Reference 1: in place, but a redraw for every event (no coalescing)."""

    def _feed_changed(self) -> None:
        drained = self.feed.drain()
        self._redraw(set(drained.keys), statuses=drained.statuses)


class Rebuild(FleetApp):
    """Reference 2: the whole table cleared and filled again for every event."""

    def _feed_changed(self) -> None:
        self.feed.drain()
        self._texts.clear()
        self.query_one(FleetTable)._layout = ()  # the next show rebuilds every row
        self._redraw(set(self.feed.rows))


@dataclasses.dataclass
class Result:
    name: str
    events: int
    redraws: int
    rebuilds: int
    frames: list[float]
    cpu: float
    wall: float


async def storm(app: FleetApp, rng: random.Random) -> int:
    keys = list(app.feed.rows)
    sent = 0
    step = 0
    end = time.monotonic() + STORM
    while time.monotonic() < end:
        step += 1
        changed = []
        for key in rng.sample(keys, PER_BURST):
            row = app.feed.rows[key]
            weight = (row.set_weight or 0) % 100 + 5
            phase = rng.choice(PHASES) if rng.random() < 0.05 else row.phase
            changed.append(dataclasses.replace(
                row, set_weight=weight, actual_weight=weight, phase=phase,
                step=f"{weight // 13}/8", progress=(weight // 13) / 8))
        app.feed.put(changed)
        sent += len(changed)
        await asyncio.sleep(EVERY)
    return sent


async def measure(kind: type[FleetApp], name: str) -> Result:
    feed = FleetFeed()
    feed.put(fleet())
    app = kind(Static(), clock=lambda: NOW, feed=feed, start_source=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.sort_by("phase")  # a sort that rows move in as their phase changes
        await pilot.pause(0.3)
        table = app.query_one(FleetTable)
        redraws, rebuilds, frames = table.redraws, table.rebuilds, len(app.frame_times)
        cpu, wall = time.process_time(), time.monotonic()
        sent = await storm(app, random.Random(7))
        await pilot.pause(0.5)  # the last coalesced redraw, and Textual's paint of it
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        return Result(name, sent, table.redraws - redraws, table.rebuilds - rebuilds,
                      app.frame_times[frames:], cpu, wall)


def report(r: Result) -> str:
    frames = sorted(r.frames) or [0.0]
    p95 = frames[min(len(frames) - 1, int(len(frames) * 0.95))]
    return (f"  {r.name:<34} {r.events:>6} events ({r.events / STORM:>5.0f}/s)  "
            f"{r.redraws:>6} redraws ({r.redraws / r.wall:>6.1f}/s, {r.rebuilds} rebuilds)  "
            f"update median {statistics.median(frames) * 1000:6.2f} ms, "
            f"p95 {p95 * 1000:6.2f} ms  CPU {r.cpu:5.2f} s "
            f"({r.cpu / r.wall * 100:3.0f} % of a core, "
            f"{r.cpu / max(r.events, 1) * 1000 * 1000:6.1f} ms per 1000 events)")


async def main() -> None:
    print(f"fleet: {ROLLOUTS} Rollouts in 2 contexts at 120x40, sorted by phase; "
          f"{STORM:g} s of {PER_BURST} changes every {EVERY * 1000:g} ms")
    ours = await measure(FleetApp, "relconsole (coalesced, in place)")
    print(report(ours))
    per_event = await measure(PerEvent, "reference: a redraw per event")
    print(report(per_event))
    rebuild = await measure(Rebuild, "reference: a rebuild per event")
    print(report(rebuild))

    def per_k(r: Result) -> float:
        return r.cpu / max(r.events, 1)

    print(f"  CPU per event: {per_k(per_event) / per_k(ours):.1f}× less than a redraw per "
          f"event, {per_k(rebuild) / per_k(ours):.1f}× less than a rebuild per event; "
          f"events delivered: {ours.events / max(rebuild.events, 1):.1f}× the rebuild's "
          "(it falls behind the storm)")


if __name__ == "__main__":
    asyncio.run(main())
