"""One driver per release, proved with real processes: take-over, expiry, hand-back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.test_crash_and_signals import ROOT, fast_config, journal, read_until, start


def relconsole(state, *args: str, ttl: str = "30"):
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args], capture_output=True, text=True,
        cwd=ROOT, timeout=60,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state), "RELCONSOLE_LEASE_TTL": ttl},
    )


def test_take_over_a_live_driver_is_journalled_and_the_old_driver_stops(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    driver = start(cfg, state)
    read_until(driver, lambda e: e["event"] == "step" and e["weight"] == 10)

    refused = relconsole(state, "pause", "-c", str(cfg), "--reason", "mine now")
    assert refused.returncode == 1
    assert f"pid {driver.pid}" in refused.stderr and "--take-over" in refused.stderr

    no_reason = relconsole(state, "pause", "-c", str(cfg), "--take-over")
    assert no_reason.returncode == 2 and "--take-over-reason" in no_reason.stderr

    taken = relconsole(state, "pause", "-c", str(cfg), "--take-over",
                       "--take-over-reason", "driver's laptop is asleep")
    assert taken.returncode == 0, taken.stderr
    out, _ = driver.communicate(timeout=30)
    assert driver.returncode == 4  # left for a human: it no longer drives
    assert "lease lost" in out
    records = journal(state)
    take = next(r for r in records if r["intent"] == "lease.take_over")
    assert take["reason"] == "driver's laptop is asleep"
    assert take["before"]["pid"] == driver.pid
    # After the take-over the old driver wrote nothing more: one driver at a time.
    later = [r for r in records if r["seq"] > take["seq"]]
    assert later and all(r["actor"] == take["actor"] for r in later)
    assert relconsole(state, "journal", "-c", str(cfg), "--verify").returncode == 0


def test_an_expired_lease_names_the_hung_holder_and_can_be_taken_over(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    env_ttl = {"RELCONSOLE_LEASE_TTL": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(cfg), "--headless", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state), **env_ttl},
    )
    try:
        read_until(driver, lambda e: e["event"] == "step" and e["weight"] == 1)
        driver.send_signal(signal.SIGSTOP)  # hung: alive, holding the lock, not renewing
        time.sleep(2.0)
        refused = relconsole(state, "advance", "-c", str(cfg), ttl="1")
        assert refused.returncode == 1
        assert "has not renewed it" in refused.stderr and "--take-over" in refused.stderr
        taken = relconsole(state, "rollback", "-c", str(cfg), "--take-over",
                           "--take-over-reason", "driver hung mid-release",
                           "--reason", "driver hung mid-release", ttl="1")
        assert taken.returncode == 0, taken.stderr
        status = json.loads(relconsole(state, "status", "-c", str(cfg), "--json").stdout)
        assert status["weight"] == 0 and status["phase"] == "rolled_back"
    finally:
        driver.send_signal(signal.SIGCONT)
        out, _ = driver.communicate(timeout=30)
    assert "lease lost" in out and driver.returncode == 4
