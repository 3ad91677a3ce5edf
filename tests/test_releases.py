"""`relconsole releases` lists the state folder's releases with how they ended, and
`relconsole journal` warns when a journal's chain is broken (not only with --verify)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


def relconsole(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relconsole", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=dict(os.environ))


def rolled_back_demo(base: Path) -> Path:
    result = relconsole("demo", "--headless", "--scenario", "bad-canary", "--speed", "3000",
                        "--state-dir", str(base))
    assert result.returncode == 3, result.stderr
    return base / "demo"


def test_a_rolled_back_release_is_listed_with_its_outcome(tmp_path: Path) -> None:
    state = rolled_back_demo(tmp_path)
    result = relconsole("releases", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("checkout-api-2.3.0-production  ROLLED BACK at 0%"), line
    assert "nobody drives" in line and "⚠" not in line
    listed = json.loads(relconsole("releases", "--state-dir", str(state), "--json").stdout)
    assert listed["outcome"] == "rolled back" and listed["chain_ok"] is True


def test_an_empty_state_folder_says_so(tmp_path: Path) -> None:
    result = relconsole("releases", "--state-dir", str(tmp_path))
    assert result.returncode == 0
    assert "no releases in" in result.stdout


def test_a_broken_chain_is_flagged_in_the_list_and_by_journal(tmp_path: Path) -> None:
    state = rolled_back_demo(tmp_path)
    path = next((state / "journal").glob("*.jsonl"))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))  # one record quietly removed
    listing = relconsole("releases", "--state-dir", str(state))
    assert "journal chain broken" in listing.stdout
    shown = relconsole("journal", "-c", str(EXAMPLE), "--state-dir", str(state))
    assert shown.returncode == 0, shown.stderr
    assert "warning" in shown.stderr and "hash chain is broken" in shown.stderr
    assert "| " in shown.stdout  # the history is still shown
