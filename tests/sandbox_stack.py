"""The sandbox (examples/sandbox/launcher.py) as a test fixture, and a headless run as a
real process whose JSON events the test can wait for.

The launcher is the same code `make sandbox` runs; here it starts in a temporary folder on
free ports of this xdist worker's own, so the tests run beside a developer's own sandbox
and beside another worker's.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "sandbox"))

import launcher  # noqa: E402
from launcher import CANARY_VERSION, Ports, Sandbox  # noqa: E402

from tests.ports import free_ports  # noqa: E402

__all__ = ["CANARY_VERSION", "Headless", "Ports", "Sandbox", "launcher", "require_programs",
           "start_sandbox", "wait_clean"]


def require_programs() -> None:
    """Skip without prometheus/haproxy on a laptop; fail under CI=true (they must run)."""
    missing = launcher.missing_programs()
    if not missing:
        return
    text = f"{' and '.join(missing)} not installed (apt-get install {' '.join(missing)})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{text}: required under CI=true (scripts/ensure-test-deps.sh installs them)")
    pytest.skip(text)


def start_sandbox(run_dir: Path, rate: float = 40.0) -> Iterator[Sandbox]:
    require_programs()
    # Not Ports.free(): its ports are ephemeral ones, which a client may take before
    # Prometheus binds (or rebinds, after a fault test restarted it) — see tests/ports.py.
    box = Sandbox(run_dir, Ports(*free_ports(6)), rate=rate)
    started = time.monotonic()
    box.up(owner_pid=os.getpid())  # a killed test run leaves no sandbox behind
    print(f"\nsandbox up in {time.monotonic() - started:.1f}s:\n{box.describe()}")
    try:
        yield box
    finally:
        box.down()


def wait_clean(box: Sandbox, timeout: float = 15.0) -> None:
    """Prometheus up, and no fault of an earlier test left in the canary's 5 s windows."""
    if not box.running().get("prometheus"):
        box.start("prometheus")
    box.reset()
    version = CANARY_VERSION
    errors = f'sum(increase(http_requests_total{{version="{version}",code=~"5.."}}[6s]))'
    slow = (f'sum(increase(http_request_duration_seconds_count{{version="{version}"}}[6s])) - '
            f'sum(increase(http_request_duration_seconds_bucket{{version="{version}",'
            f'le="0.1"}}[6s]))')
    flowing = f'sum(rate(http_requests_total{{version="{launcher.STABLE_VERSION}"}}[5s]))'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirty = [q for q in (errors, slow)
                 if any(float(r["value"][1]) > 0 for r in box.query(q))]
        if not dirty and box.query(flowing):
            return
        time.sleep(0.5)
    raise AssertionError("the canary's windows never came clean")


class Headless:
    """`relconsole run --headless --json` as a process; its events arrive as dicts."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relconsole", "run", "-c", str(config), "--headless",
             "--json", *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._queue.put(event)
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                 timeout: float = 30.0) -> dict[str, Any]:
        """The first event (already seen or new) for which predicate holds."""
        for event in self.events:
            if predicate(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                self._queue.put(None)
                break
            self.events.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"no such event within {timeout}s; output:\n" + self.output())

    def finish(self, timeout: float = 60.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("the headless run did not end; output:\n"
                                 + self.output()) from None
        self._reader.join(5)
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            if event is not None:
                self.events.append(event)
        return code

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
