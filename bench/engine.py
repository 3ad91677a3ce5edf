"""Engine benchmark on the simulator: how fast a poll is and how much a release costs.

Run by hand or with `make bench`; prints numbers and ratios, asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relconsole.assembly import demo_config, open_session
from relconsole.clock import FastClock
from relconsole.model import Phase


async def one_release(scenario: str, state: Path) -> tuple[float, int, Phase]:
    session = open_session(demo_config(scenario), clock=FastClock(), state=state)
    engine = session.engine
    started = time.perf_counter()
    await engine.attach()
    ticks = 0
    while not (engine.phase.terminal or engine.phase is Phase.PAUSED):
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
        ticks += 1
    elapsed = time.perf_counter() - started
    await session.close()
    return elapsed, ticks, engine.phase


async def tick_cost(state: Path, n: int = 2000) -> list[float]:
    session = open_session(demo_config("healthy", auto_advance=False), clock=FastClock(),
                           state=state)
    engine = session.engine
    await engine.attach()
    await engine.advance()
    samples = []
    for _ in range(n):
        await engine.clock.sleep(engine.plan.poll_interval)
        t = time.perf_counter()
        await engine.tick()
        samples.append(time.perf_counter() - t)
    await session.close()
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("scenario              result        ticks   wall     virtual/real")
        for i, scenario in enumerate(("healthy", "bad-canary", "noisy-healthy", "no-data",
                                      "flaky-provider")):
            elapsed, ticks, phase = asyncio.run(one_release(scenario, root / f"r{i}"))
            virtual = ticks * 5.0
            print(f"{scenario:<20}  {phase.value:<12}  {ticks:>5}  {elapsed * 1000:6.1f}ms"
                  f"  {virtual / elapsed:>10.0f}x")
        tracemalloc.start()
        samples = asyncio.run(tick_cost(root / "ticks"))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        med = statistics.median(samples)
        p99 = sorted(samples)[int(len(samples) * 0.99)]
        print(f"\none poll + decide (sim, 4 metrics, 2 gates, 6 flags), {len(samples)} polls:")
        print(f"  median {med * 1e6:.0f} µs   p99 {p99 * 1e6:.0f} µs   "
              f"= {5.0 / med:,.0f}× faster than the 5 s poll interval")
        print(f"  peak traced memory over {len(samples)} polls: {peak / 1024:.0f} KiB "
              "(history and events are bounded)")


if __name__ == "__main__":
    main()
