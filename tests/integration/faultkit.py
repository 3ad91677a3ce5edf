"""What the Prometheus and HAProxy rows of the fault matrix share: a relconsole config that
points one provider at a FaultProxy, an in-process engine on the real clock, and a poll
loop that reads HAProxy's own weights after every poll.

The engine runs in the test's event loop with `SystemClock`: Prometheus answers about real
time, so the clock is real and kept short (0.5 s polls, 2 s call timeout, 3 inconclusive
polls to a pause) so each row takes seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relconsole.assembly import Session, open_session
from relconsole.clock import SystemClock
from relconsole.config import load_config
from relconsole.engine.release import ReleaseEngine
from relconsole.model import Phase, Verdict
from tests.faults.harness import user_sees
from tests.sandbox_stack import CANARY_VERSION, Sandbox, launcher

POLL = 0.5
CALL_TIMEOUT = "2s"
WINDOW = "5s"  # launcher.relconsole_config's default query window
INCONCLUSIVE_LIMIT = 3
# A bake that ends while the fault is on: without the fault the engine would advance.
STEPS = ((20, "2s"), (50, "60s"), (100, ""))


def write_config(
    box: Sandbox,
    tmp_path: Path,
    *,
    prometheus_port: int | None = None,
    socket_path: Path | None = None,
    admin_port: int | None = None,
    steps: tuple[tuple[int, str], ...] = STEPS,
    auto_advance: bool = True,
) -> Path:
    """The sandbox's relconsole config with Prometheus and/or the runtime API redirected."""
    ports = dataclasses.replace(
        box.ports,
        prometheus=prometheus_port or box.ports.prometheus,
        admin=admin_port or box.ports.admin,
    )
    if admin_port is not None:
        socket_path = None  # the runtime API over TCP
    elif socket_path is None:
        socket_path = box.socket_path
    text = launcher.relconsole_config(
        ports, socket_path=socket_path, steps=steps, auto_advance=auto_advance,
        inconclusive_limit=INCONCLUSIVE_LIMIT, state_dir=str(tmp_path / "state"),
        call_timeout=CALL_TIMEOUT,
    )
    assert "poll_interval: 1s" in text
    text = text.replace("poll_interval: 1s", f"poll_interval: {POLL:g}s")
    # The matrix is about provider faults, not judging: its error rate is judged on values,
    # with the `or vector(0)` workaround users had before relconsole read counters, so a
    # row's gates pass at the first poll (counts need two, and then enough requests) and
    # each row's timing is the one it was designed with. A count gate under a Prometheus
    # outage is tested on the same stack in test_sandbox.py (Prometheus stopped mid-step).
    design = launcher.metric_query("error_rate", WINDOW)
    assert design in text
    text = text.replace(design, f"({design}) or vector(0)")
    path = tmp_path / "relconsole.yaml"
    path.write_text(text)
    return path


def open_engine(config: Path, tmp_path: Path) -> Session:
    return open_session(load_config(config), clock=SystemClock(), state=tmp_path / "state")


@dataclass
class Watch:
    """Polls the engine and records HAProxy's own account after every poll."""

    engine: ReleaseEngine
    box: Sandbox
    real_weights: set[int] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)  # what the user saw, poll by poll

    def haproxy(self) -> dict[str, int]:
        weights = self.box.weights()
        total = weights["stable"] + weights["canary"]
        self.real_weights.add(round(100 * weights["canary"] / total) if total else 0)
        return weights

    async def poll(self, times: int = 1) -> None:
        for _ in range(times):
            await asyncio.sleep(POLL)
            await self.engine.tick()
            self.seen.append(user_sees(self.engine))
            self.haproxy()

    async def until(self, condition: Callable[[ReleaseEngine], bool], *, polls: int = 20,
                    each: Callable[[Watch], None] | None = None) -> int:
        """Poll until `condition`; how many polls it took."""
        for n in range(1, polls + 1):
            await self.poll()
            if each is not None:
                each(self)
            if condition(self.engine):
                return n
        raise AssertionError(
            f"not reached within {polls} polls; the user sees:\n{user_sees(self.engine)}")


def warm_canary(box: Sandbox, weight: int = 20, timeout: float = 15.0) -> None:
    """HAProxy at `weight`% canary, and Prometheus holding the canary's traffic in its
    5 s windows, so the gates pass at once and any no-data is the injected fault's."""
    box.runtime(f"set weight {launcher.BACKEND}/canary {weight}; "
                f"set weight {launcher.BACKEND}/stable {100 - weight}")
    query = (f'sum(increase(http_requests_total{{version="{CANARY_VERSION}"}}[5s]))')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(float(r["value"][1]) >= 10 for r in box.query(query)):
            return
        time.sleep(0.3)
    raise AssertionError("the canary never served traffic in Prometheus's window")


def gates_passing(engine: ReleaseEngine) -> bool:
    return all(g.verdict is Verdict.PASS for g in engine.snapshot().gates)


def paused(engine: ReleaseEngine) -> bool:
    return engine.phase is Phase.PAUSED


def records_after(records: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    return [r for r in records if int(r.get("seq", 0)) > seq]
