"""Real processes killed at the worst moment: the release must stay where it stands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


def fast_config(tmp_path: Path, scenario: str = "healthy") -> Path:
    """The example release on the simulator, with bakes short enough to run in seconds."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["release"]["poll_interval"] = "200ms"
    data["release"]["steps"] = [
        {"weight": 1, "bake": "1s"},
        {"weight": 10, "bake": "3s"},
        {"weight": 50, "bake": "1s"},
        {"weight": 100},
    ]
    data["providers"]["metrics"]["scenario"] = scenario
    path = tmp_path / "relconsole.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start(cfg: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(cfg), "--headless", "--json",
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
    )


def read_until(proc: subprocess.Popen[str], predicate, timeout: float = 30) -> list[dict]:
    assert proc.stdout is not None
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        events.append(json.loads(line))
        if predicate(events[-1]):
            return events
    raise AssertionError(f"never saw the event; got {[e['event'] for e in events]}")


def journal(state: Path) -> list[dict]:
    path = next((state / "journal").glob("*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def verified_weights(records: list[dict]) -> list[int]:
    return [
        r["after"]["weight"] for r in records
        if r["intent"] in ("advance", "promote") and str(r.get("outcome")).startswith("verified")
    ]


def test_kill_9_mid_step_then_restart_neither_reapplies_nor_skips_a_step(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    first = start(cfg, state)
    read_until(first, lambda e: e["event"] == "step" and e["weight"] == 10)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert verified_weights(journal(state)) == [1, 10]

    second = start(cfg, state)
    events = read_until(second, lambda e: e["event"] == "attach")
    assert "PROGRESSING at 10%" in events[-1]["message"]
    second.communicate(timeout=60)
    assert second.returncode == 0
    records = journal(state)
    # Every step exactly once, in order, across the crash.
    assert verified_weights(records) == [1, 10, 50, 100]
    assert subprocess.run(
        [sys.executable, "-m", "relconsole", "journal", "-c", str(cfg), "--verify"],
        cwd=ROOT, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
        capture_output=True,
    ).returncode == 0


def test_sigint_in_headless_leaves_the_release_paused_where_it_stands(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    proc = start(cfg, state)
    read_until(proc, lambda e: e["event"] == "step" and e["weight"] == 10)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "left paused where it stands" in out + err
    last = journal(state)[-1]
    assert last["intent"] == "pause" and last["after"]["phase"] == "paused"
    assert last["after"]["weight"] == 10
    status = subprocess.run(
        [sys.executable, "-m", "relconsole", "status", "-c", str(cfg), "--json"],
        cwd=ROOT, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
        capture_output=True, text=True,
    )
    snap = json.loads(status.stdout)
    assert snap["weight"] == 10 and snap["phase"] == "paused"


def test_sigterm_in_headless_is_treated_like_sigint(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    proc = start(cfg, state)
    read_until(proc, lambda e: e["event"] == "step" and e["weight"] == 1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert journal(state)[-1]["after"]["weight"] == 1
