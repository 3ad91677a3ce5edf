"""Issue 10, item 4, with real processes: a take-over's reason and the action's reason are
two reasons, the old driver stops within a second (not at its next poll) and says who
took the release, when and why, and a headless watcher says when nobody drives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.test_crash_and_signals import ROOT, fast_config, journal, read_until, start

R1 = "primary unresponsive"
R2 = "bake done, numbers fine"


def slow_config(tmp_path: Path) -> Path:
    """Polls 10 s apart: a driver that noticed a take-over only when it polls would keep
    driving for up to 10 s, far past the 3 s the tests allow it (and the first step, at the
    first poll, comes in 10 s, not in half a minute)."""
    cfg = fast_config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["release"]["poll_interval"] = "10s"
    data["release"]["steps"] = [{"weight": 1, "bake": "10m"}, {"weight": 10, "bake": "10m"},
                                {"weight": 100}]
    cfg.write_text(yaml.safe_dump(data))
    return cfg


def relconsole(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args], capture_output=True, text=True,
        cwd=ROOT, timeout=60, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
    )


def lost_message(out: str) -> str:
    lost = [json.loads(line)["message"] for line in out.splitlines()
            if line.startswith("{") and "lease lost" in line]
    assert lost, out
    return lost[0]


def test_take_over_and_action_keep_their_own_reasons_and_the_old_driver_stops_at_once(
    tmp_path,
):
    cfg, state = slow_config(tmp_path), tmp_path / "state"
    driver = start(cfg, state)
    try:
        read_until(driver, lambda e: e["event"] == "step" and e["weight"] == 1)
        taken = relconsole(state, "advance", "-c", str(cfg), "--take-over",
                           "--take-over-reason", R1, "--reason", R2, "--skip-bake")
        assert taken.returncode == 0, taken.stderr
        done = time.monotonic()
        # Its next poll is up to 10 s away; it must have stopped long before.
        out, _ = driver.communicate(timeout=3)
    finally:
        driver.kill()
    assert time.monotonic() - done < 3
    assert driver.returncode == 4  # left to a human: it no longer drives
    records = journal(state)
    take = next(r for r in records if r["intent"] == "lease.take_over")
    assert take["reason"] == R1
    advance = next(r for r in records if r["intent"] == "advance" and r["seq"] > take["seq"])
    assert advance["reason"] == R2
    assert not [r for r in records if R1 in r.get("reason", "") and r is not take]
    message = lost_message(out)
    # Who (which process), when and why — the take-over's reason, not the action's.
    assert "took over" in message and "(pid " in message, message
    assert R1 in message and R2 not in message, message
    assert " at " in message or " since " in message, message


def test_a_driver_that_notices_late_names_the_finished_taker_and_says_nobody_drives(tmp_path):
    cfg, state = slow_config(tmp_path), tmp_path / "state"
    driver = start(cfg, state)
    try:
        read_until(driver, lambda e: e["event"] == "step" and e["weight"] == 1)
        driver.send_signal(signal.SIGSTOP)  # asleep while a one-shot takes over and ends
        taken = relconsole(state, "pause", "-c", str(cfg), "--take-over",
                           "--take-over-reason", R1, "--reason", R2)
        assert taken.returncode == 0, taken.stderr
        driver.send_signal(signal.SIGCONT)
        out, _ = driver.communicate(timeout=5)
    finally:
        driver.send_signal(signal.SIGCONT)
        driver.kill()
    message = lost_message(out)
    user = next(r for r in journal(state) if r["intent"] == "lease.take_over")["actor"]["user"]
    assert f"{user}@" in message and " took over at " in message, message
    assert f": {R1}; nobody drives now" in message, message


def test_one_reason_for_two_things_is_refused_with_one_usage_message(tmp_path):
    cfg, state = slow_config(tmp_path), tmp_path / "state"
    ambiguous = relconsole(state, "advance", "-c", str(cfg), "--take-over", "--reason", R2)
    assert ambiguous.returncode == 2
    assert "--take-over needs --take-over-reason TEXT" in ambiguous.stderr
    assert "--reason is the action's own reason" in ambiguous.stderr
    alone = relconsole(state, "pause", "-c", str(cfg), "--take-over-reason", R1)
    assert alone.returncode == 2 and "--take-over-reason needs --take-over" in alone.stderr
    assert not (state / "journal").exists() or not journal(state)  # nothing was done


def test_a_headless_watcher_says_when_nobody_drives_any_more(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    driver = start(cfg, state)
    watcher = None
    try:
        read_until(driver, lambda e: e["event"] == "step" and e["weight"] == 1)
        watcher = start(cfg, state, "--watch")
        read_until(watcher, lambda e: e["event"] == "attach")
        driver.send_signal(signal.SIGKILL)  # gone without a word; the OS drops the lock
        driver.wait()
        events = read_until(watcher, lambda e: "nobody drives" in e["message"], timeout=15)
        assert f"`relconsole run -c {cfg}` takes it" in events[-1]["message"]
    finally:
        driver.kill()
        if watcher is not None:
            watcher.kill()
            watcher.communicate()
