"""A demo's simulated world runs `--speed` times faster than real time; its lease must not.

Proved with real processes: a fast headless demo keeps one driver (a second demo on the
same state folder watches it), and its lease's times are wall-clock times, so a hung fast
demo is named as hung after its TTL of real seconds, not after TTL × speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_crash_and_signals import ROOT, read_until

DEMO_CONFIG = ROOT / "relconsole" / "demo.yaml"
RELEASE = "checkout-api-2.3.0-production"
# Fast enough that the simulated clock runs far ahead of real time within a second, slow
# enough (7.5 simulated minutes of bakes: 15 s) that the second console meets it running.
SPEED = "30"


def demo(state: Path, *extra: str, ttl: str = "30") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "relconsole", "demo", "--headless", "--json",
         "--state-dir", str(state), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "RELCONSOLE_LEASE_TTL": ttl},
    )


def one_shot(demo_state: Path, *args: str, ttl: str = "30") -> subprocess.CompletedProcess[str]:
    """An action on the demo's release from another console (it must be refused)."""
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args, "-c", str(DEMO_CONFIG),
         "--state-dir", str(demo_state)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "RELCONSOLE_LEASE_TTL": ttl},
    )


def lease_info(demo_state: Path) -> dict:
    return json.loads((demo_state / "lease" / f"{RELEASE}.json").read_text())


def journal(demo_state: Path) -> list[dict]:
    path = next((demo_state / "journal").glob("*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"the demo did not end:\n{out}\n{err}") from None
    return proc.returncode, out + err


def test_a_second_demo_watches_a_fast_demo_instead_of_taking_it_over(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = demo(state, "--speed", SPEED, "--scenario", "healthy")
    second: subprocess.Popen[str] | None = None
    try:
        read_until(first, lambda e: e.get("event") == "step" and e.get("weight") == 1)
        refused = one_shot(state / "demo", "pause", "--reason", "mine now")
        assert refused.returncode == 1, refused.stderr
        assert f"pid {first.pid}" in refused.stderr
        assert "drives this release" in refused.stderr
        assert "has not renewed" not in refused.stderr  # it is alive and renewing

        # The same command again: it must not wipe the running demo's folder (and lease).
        second = demo(state, "--speed", SPEED, "--scenario", "healthy")
        code, out = finish(second)
        assert code == 0, out  # watched the first one promote
        code, out = finish(first)
        assert code == 0, out
        assert "lease lost" not in out
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    records = journal(state / "demo")
    assert [r["intent"] for r in records].count("attach") == 1  # one console drove
    assert not [r for r in records if r["intent"] == "lease.take_over"]


def test_a_fast_demo_keeps_its_lease_on_the_wall_clock(tmp_path: Path) -> None:
    state, ttl = tmp_path / "state", 2.0
    before = time.time()
    driver = demo(state, "--speed", SPEED, "--scenario", "healthy", ttl=f"{ttl:g}")
    stopped = False
    try:
        read_until(driver, lambda e: e.get("event") == "step" and e.get("weight") == 1)
        info = lease_info(state / "demo")
        assert info["pid"] == driver.pid
        now = time.time()
        assert before <= info["since"] <= now
        # On the simulated clock the expiry ran `SPEED` times ahead of real time.
        assert info["expires"] <= now + ttl + 1.0, info

        driver.send_signal(signal.SIGSTOP)  # hung: alive, holding the lock, not renewing
        stopped = True
        expires = lease_info(state / "demo")["expires"]
        assert expires <= time.time() + ttl + 1.0
        while time.time() <= expires + 0.2:  # the TTL is real seconds: this is short
            time.sleep(0.1)
        refused = one_shot(state / "demo", "advance", "--reason", "nudge", ttl=f"{ttl:g}")
        assert refused.returncode == 1, refused.stderr
        assert f"pid {driver.pid}" in refused.stderr
        assert "has not renewed it" in refused.stderr and "--take-over" in refused.stderr

        driver.send_signal(signal.SIGCONT)
        stopped = False
        code, out = finish(driver)
        assert code == 0, out  # nobody took it over: it went on to promote
    finally:
        if stopped:
            driver.send_signal(signal.SIGCONT)
        if driver.poll() is None:
            driver.kill()
            driver.communicate(timeout=10)
