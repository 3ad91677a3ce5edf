"""Issue 10 in a real terminal under tmux: quitting hands the release on, bursts land right.

- `q` on the console that drives a release mid-step: "hand off" starts a headless driver
  in a session of its own, which takes the lease and goes on guarding (here: on to 100 %)
  after the console, and then the terminal itself, are gone (item 1).
- Keys sent in one `send-keys` (a burst, as a paste or a lagging SSH link delivers them)
  and a bracketed paste reach the fields they were typed for (item 7).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.tmux_helpers import ROOT, TmuxConsole, alive

pytestmark = pytest.mark.tmux

DEMO = ROOT / "relconsole" / "demo.yaml"
RELEASE_FLAG = "checkout-new-pricing-release"


def console(state: Path, *args: str, size: tuple[int, int] = (80, 24)) -> TmuxConsole:
    return TmuxConsole(list(args), size=size,
                       env={"RELCONSOLE_STATE_DIR": str(state), "TERM": "xterm-256color",
                            "TZ": "UTC"})


def records(state: Path) -> list[dict]:
    path = next((state / "demo" / "journal").glob("*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def lease(state: Path) -> dict:
    return json.loads(next((state / "demo" / "lease").glob("*.json")).read_text())


def joined(term: TmuxConsole) -> str:
    """The pane with the lines the terminal wrapped joined up again."""
    return subprocess.run([term.tmux, "-L", term.socket, "capture-pane", "-p", "-J", "-t",
                           term.name], capture_output=True, text=True, check=True).stdout


def tmux(term: TmuxConsole, *command: str) -> None:
    """One tmux client invocation: its commands reach the pane back to back."""
    subprocess.run([term.tmux, "-L", term.socket, *command], check=True)


def test_quit_hands_the_release_to_a_headless_driver_that_outlives_the_terminal(tmp_path):
    state = tmp_path / "state"
    term = console(state, "demo", "--scenario", "healthy", "--manual", "--speed", "30")
    driver_pid: int | None = None
    try:
        term.wait_for(lambda s: "checkout-api" in s, timeout=20)
        term.keys("a")
        term.wait_for(lambda s: "canary at 1% (verified)" in s, timeout=15)
        term.keys("q")
        asked = term.wait_for(lambda s: "Quit while this console drives" in s, timeout=10)
        assert "nobody will roll it back" in asked and "Hand off to a headless driver" in asked
        term.keys("Up", "Up", "Up", "Enter")  # from Cancel up to "Hand off"
        screen = term.wait_for(lambda s: "EXITED=" in s, timeout=60)
        assert "EXITED=0" in screen and "Traceback" not in screen
        lines = [x for x in joined(term).splitlines() if x.strip()]
        line = lines[0]  # one line (the terminal wrapped it), then the shell's EXITED=0
        assert lines[1:] == ["EXITED=0"], lines
        found = re.search(r"handed to a headless driver \(pid (\d+), log ([^)]+)\)", line)
        assert found, screen
        assert line.startswith("relconsole: checkout-api 2.3.0 PROGRESSING at 1% (step 1/4)")
        assert "Journal: " in line and "Re-attach: relconsole demo --scenario healthy" in line
        driver_pid = int(found.group(1))
        assert alive(driver_pid)
        assert os.getsid(driver_pid) == driver_pid  # its own session: no hang-up reaches it
        assert lease(state)["pid"] == driver_pid
        taken = [r for r in records(state) if r["intent"] == "lease.take_over"]
        assert taken and taken[-1]["reason"].startswith("hand-off: ")

        term.close()  # the terminal goes away, as when the SSH link drops
        deadline = time.monotonic() + 60
        while alive(driver_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(driver_pid), "the headless driver should have finished the plan"
        done = records(state)
        promoted = [r for r in done if r["intent"] == "advance"
                    and str(r.get("outcome", "")).startswith("verified")
                    and r["after"]["weight"] == 100]
        assert promoted, [(r["intent"], r.get("outcome")) for r in done]
        world = json.loads(next((state / "demo").glob("sim-*.json")).read_text())
        assert world["weight"] == 100
    finally:
        term.close()
        if driver_pid is not None and alive(driver_pid):
            os.kill(driver_pid, signal.SIGKILL)


def test_a_burst_and_a_bracketed_paste_land_in_the_fields_they_were_typed_for(tmp_path):
    state = tmp_path / "state"
    term = console(state, "demo", "--scenario", "healthy", "--manual", "--speed", "1")
    try:
        term.wait_for(lambda s: "checkout-api" in s, timeout=20)
        term.keys("a")
        term.wait_for(lambda s: "canary at 1% (verified)" in s, timeout=15)

        # One send-keys: the rollout dialog opens and every field is typed in one burst.
        term.keys("%", "60", "Tab", "ramp up", "Tab", RELEASE_FLAG, "Enter")
        term.wait_for(lambda s: "ON 60%" in s, timeout=15)  # in the flags table

        # A bracketed paste between keys, in one tmux invocation: p, paste, Enter.
        tmux(term, "set-buffer", "-b", "why", "db failover in eu-west-1")
        tmux(term, "send-keys", "-t", term.name, "p", ";",
             "paste-buffer", "-p", "-b", "why", "-t", term.name, ";",
             "send-keys", "-t", term.name, "Enter")
        term.wait_for(lambda s: "PAUSED" in s, timeout=15)
        term.keys("p")  # resume
        term.wait_for(lambda s: "resumed" in s, timeout=15)

        # A reason with a correction in it: r, typed, three backspaces, more, Enter.
        term.keys("r", "p99 spike in grafanaxyz", "BSpace", "BSpace", "BSpace", " (INC-42)",
                  "Enter")
        term.wait_for(lambda s: "ROLLED BACK" in s, timeout=20)
        term.keys("q")  # rolled back: nothing to guard, it quits at once
        term.wait_for(lambda s: "EXITED=0" in s, timeout=15)
    finally:
        term.close()
    journal = records(state)
    rollout = [r for r in journal if r["intent"] == "flag.rollout"]
    assert rollout[0]["reason"] == "ramp up"
    verified = [r for r in rollout if r.get("outcome") == "verified"]
    assert verified[0]["after"]["rollout"] == 60, rollout
    pauses = [r["reason"] for r in journal if r["intent"] == "pause"]
    assert pauses[0] == "db failover in eu-west-1"
    rollbacks = [r["reason"] for r in journal if r["intent"] == "rollback"]
    assert rollbacks[0] == "p99 spike in grafana (INC-42)"
