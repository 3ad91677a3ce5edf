"""The command line as run by hand, as real processes (issue 10, items 8, 13 and 16).

- In a real terminal (a pty), NO_COLOR and a 16-colour TERM draw no character in its own
  background colour; NO_COLOR sends no colour at all.
- `relconsole demo` on a reused `--state-dir` never deletes a journal, nor anything else.
- An option that would do nothing in the chosen mode is a usage error: one line, exit 2.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tui"))

from terminal_bytes import cells, colour_codes, invisible, text_of  # noqa: E402

from relconsole.engine.journal import verify  # noqa: E402


def relconsole(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "relconsole", *args], capture_output=True, text=True,
        cwd=ROOT, timeout=timeout, env={**os.environ, **(env or {})},
    )


# -- item 8: the bytes a real terminal receives -------------------------------------------


def console_output(env: dict[str, str], state: Path, seconds: float = 4.0) -> str:
    """What `relconsole demo` writes to an 80×24 pty in its first seconds."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    clean = {k: v for k, v in os.environ.items()
             if k not in ("NO_COLOR", "COLORTERM", "TEXTUAL_COLOR_SYSTEM", "COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "relconsole", "demo", "--scenario", "healthy", "--manual"],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, start_new_session=True,
        env={**clean, "RELCONSOLE_STATE_DIR": str(state), **env},
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        drawn_at: float | None = None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
            if drawn_at is None and b"DRIVE" in seen:
                drawn_at = time.monotonic()
            if drawn_at is not None and time.monotonic() - drawn_at > seconds:
                break
        assert b"DRIVE" in seen, seen[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)  # the console leaves the release as it is
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    return seen.decode("utf-8", "replace")


@pytest.mark.parametrize(
    ("env", "monochrome"),
    [
        ({"NO_COLOR": "1", "TERM": "xterm-256color"}, True),  # the report: black on black
        ({"NO_COLOR": "1", "TERM": "xterm"}, True),
        ({"TERM": "xterm"}, False),  # 16 colours: the ansi theme
        ({"TERM": "xterm-256color"}, False),
    ],
    ids=["no-color-256", "no-color-16", "xterm-16", "xterm-256"],
)
def test_a_real_terminal_never_gets_text_in_its_background_colour(
    tmp_path: Path, env: dict[str, str], monochrome: bool
) -> None:
    data = console_output(env, tmp_path / "state")
    drawn = cells(data)
    assert "checkout-api 2.3.0" in text_of(drawn)
    hidden = invisible(drawn)
    assert not hidden, "".join(c.char for c in hidden[:80])
    if monochrome:
        assert colour_codes(data) == set()
        assert "DRIVE" in text_of(drawn, reverse=True)


# -- item 13: a reused demo state folder ---------------------------------------------------


def demo_run(state: Path) -> subprocess.CompletedProcess[str]:
    return relconsole("demo", "--headless", "--scenario", "healthy", "--speed", "3000",
                      "--state-dir", str(state))


def test_a_reused_demo_state_dir_keeps_every_journal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = demo_run(state)
    assert first.returncode == 0, first.stderr
    journal = state / "demo" / "journal" / "checkout-api-2.3.0-production.jsonl"
    first_records = journal.read_text()
    notes = state / "demo" / "notes.txt"  # something of the user's, next to the demo
    notes.write_text("mine\n")

    second = demo_run(state)
    assert second.returncode == 0, second.stderr
    kept = list((state / "demo" / "journal" / "earlier").glob("*.jsonl"))
    assert len(kept) == 1, kept
    assert kept[0].read_text() == first_records
    assert f"the previous demo's journal is kept as {kept[0]}" in second.stderr
    assert notes.read_text() == "mine\n"
    # The new demo started a fresh simulated release: its own journal, one attach.
    intents = [json.loads(line)["intent"] for line in journal.read_text().splitlines()]
    assert intents.count("attach") == 1
    # The kept journal is still an intact hash chain, its head file beside it.
    assert verify(kept[0]).ok, verify(kept[0]).problems


# -- item 16: options that do nothing are usage errors ---------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("demo", "--theme", "neon", "--headless"), "--theme does nothing with --headless"),
        (("demo", "--headless", "--no-mouse"), "--no-mouse does nothing with --headless"),
        (("demo", "--headless", "--manual"), "--manual does nothing with --headless"),
        (("demo", "--headless", "--watch"), "--watch and --headless do not go together"),
        (("run", "-c", "config.example.yaml", "--headless", "--theme", "dark"),
         "--theme does nothing with --headless"),
        (("demo", "--theme", "neon"), "unknown theme 'neon': choose one of ansi, dark, "
                                      "high-contrast, light"),
        (("run", "-c", "config.example.yaml", "--theme", "hight-contrast"),
         "did you mean 'high-contrast'?"),
        (("demo", "--json"), "--json needs --headless"),
    ],
)
def test_an_option_that_would_do_nothing_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = relconsole(*args, env={"RELCONSOLE_STATE_DIR": str(tmp_path / "state")},
                        timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("relconsole: ") and says in lines[0], lines[0]
    assert result.stdout == ""


def test_the_flags_listing_explains_its_audit_letters() -> None:
    result = relconsole("flags", "-c", "config.example.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("LFOD" in line for line in lines)
    assert lines[-1].startswith("audit: E past the expiry date")
    assert "L older than its type's lifetime" in lines[-1] and "O no owner" in lines[-1]
