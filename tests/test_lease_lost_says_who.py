"""A driver whose lease is taken says who took it, when and why (issue 10, item 4) —
even when the one-shot command that took it has already finished and let it go."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.test_crash_and_signals import ROOT, fast_config, read_until, start


def test_the_old_driver_names_who_took_over_and_why(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    driver = start(cfg, state)
    read_until(driver, lambda e: e["event"] == "step" and e["weight"] == 10)
    taken = subprocess.run(
        [sys.executable, "-m", "relconsole", "pause", "-c", str(cfg), "--take-over",
         "--take-over-reason", "primary unresponsive"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
    )
    assert taken.returncode == 0, taken.stderr
    out, _ = driver.communicate(timeout=30)
    lost = [json.loads(line) for line in out.splitlines()
            if line.startswith("{") and "lease lost" in line]
    assert lost, out
    message = lost[0]["message"]
    # Who (and which process), and why: from the take-over's journal record, or from the
    # lease itself when the old driver notices before that record is written.
    assert "took over" in message and "primary unresponsive" in message, message
    assert "(pid " in message, message
