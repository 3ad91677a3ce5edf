"""Running a release again after a rollback (issue 10, item 15).

Started again unchanged, a rolled-back release attaches ROLLED BACK and stays there: its
journal says so, and a journal is never deleted. `relconsole run --again --reason TEXT`
journals a `restart` and the release starts over at step 0, every earlier record kept.
Real processes on the simulator, with the state folder in tmp_path.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from relconsole.engine.recovery import again_refusal, current_attempt, recover
from relconsole.model import Phase

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


def relconsole(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args, "-c", str(EXAMPLE), "--state-dir",
         str(state)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "TZ": "UTC"}


def records(state: Path) -> list[dict]:
    path = next((state / "journal").glob("*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rolled_back(state: Path) -> None:
    assert relconsole(state, "advance").returncode == 0
    result = relconsole(state, "rollback", "--reason", "error spike on 1%")
    assert result.returncode == 0, result.stderr


def headless_until_attached(state: Path, *args: str) -> tuple[int, str]:
    """`run --headless --json`, stopped by ctrl+c once it has attached (its bakes are
    real minutes); returns its exit code and its first event."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(EXAMPLE), "--state-dir",
         str(state), "--headless", "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    assert proc.stdout is not None
    first = proc.stdout.readline()
    # A release that ends by itself (rolled back) must not be interrupted: a SIGINT that
    # lands while it exits would end it with the signal instead of its code.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)
    return proc.returncode, first


def test_again_starts_at_step_0_and_keeps_every_earlier_record(tmp_path: Path) -> None:
    rolled_back(tmp_path)
    # Started again unchanged, it stays rolled back: a headless run ends at once.
    code, first = headless_until_attached(tmp_path)
    assert code == 3 and "ROLLED BACK" in json.loads(first)["message"]
    before = records(tmp_path)
    _code, first = headless_until_attached(tmp_path, "--again", "--reason",
                                           "fixed the connection pool")
    assert json.loads(first)["message"] == "attached: PENDING at 0% (step 0/4)"
    after = records(tmp_path)
    assert after[:len(before)] == before, "the earlier attempt stays in the journal"
    restart = after[len(before)]
    assert restart["intent"] == "restart"
    assert restart["reason"] == "fixed the connection pool"
    assert restart["before"]["phase"] == "rolled_back"
    assert after[len(before) + 1]["intent"] == "attach"
    assert after[len(before) + 1]["after"]["phase"] == "pending"
    assert relconsole(tmp_path, "journal", "--verify").returncode == 0
    shown = relconsole(tmp_path, "journal").stdout
    assert "| restart | fixed the connection pool |" in shown
    assert "error spike on 1%" in shown


def test_again_needs_a_reason(tmp_path: Path) -> None:
    rolled_back(tmp_path)
    result = relconsole(tmp_path, "run", "--again")
    assert result.returncode == 2
    assert result.stderr.strip() == ("relconsole: --again needs --reason TEXT: running a "
                                     "release again is journalled with why (what was fixed)")
    assert "Traceback" not in result.stderr
    assert all(r["intent"] != "restart" for r in records(tmp_path))


def test_again_is_refused_for_a_release_still_under_way(tmp_path: Path) -> None:
    assert relconsole(tmp_path, "advance").returncode == 0  # 1 %, progressing
    result = relconsole(tmp_path, "run", "--headless", "--again", "--reason", "why not")
    assert result.returncode == 2
    assert "--again refused for checkout-api-2.3.0-production" in result.stderr
    assert "progressing, not rolled back or promoted" in result.stderr
    assert all(r["intent"] != "restart" for r in records(tmp_path))


def test_again_is_refused_where_there_is_nothing_to_run_again(tmp_path: Path) -> None:
    result = relconsole(tmp_path, "run", "--headless", "--again", "--reason", "x")
    assert result.returncode == 2
    assert "nothing to run again" in result.stderr


def test_recovery_counts_only_the_attempt_after_the_last_restart() -> None:
    old = [
        {"intent": "advance", "outcome": "verified", "after": {"phase": "progressing",
                                                             "weight": 1}},
        {"intent": "rollback", "reason": "bad", "outcome": None, "after": {}},
        {"intent": "rollback", "outcome": "verified", "after": {"phase": "rolled_back",
                                                              "weight": 0}},
    ]
    restart = {"intent": "restart", "reason": "fixed", "outcome": "verified",
               "after": {"phase": "pending", "weight": 0}}
    assert recover(old, weight=0, weight_known=True, step_index=-1,
                   now=0.0).phase is Phase.ROLLED_BACK
    again = [*old, restart]
    assert current_attempt(again) == []
    assert recover(again, weight=0, weight_known=True, step_index=-1,
                   now=0.0).phase is Phase.PENDING
    assert again_refusal(old) is None
    assert again_refusal(again) is not None  # the new attempt has not ended
