"""The terminal goes away (SSH drops): the console leaves within 5 s, without spinning,
with the release exactly as it was — also when SIGHUP is ignored, as under nohup."""

from __future__ import annotations

import contextlib
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_until(master: int, needle: bytes, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle not in seen:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            seen += os.read(master, 65536)
    assert needle in seen, f"never saw {needle!r}"
    return seen


@pytest.mark.parametrize("sighup", ["default", "ignored", "sigterm"])
def test_console_leaves_within_5s_when_its_terminal_goes_away(tmp_path, sighup):
    """`sigterm`: the terminal stays, the console is told to stop (systemd, kill, tmux
    kill-session); it must leave the same way."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    state = tmp_path / "state"

    def become_terminal_session() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if sighup == "ignored":
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-m", "relconsole", "demo", "--scenario", "healthy", "--manual"],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, preexec_fn=become_terminal_session,
        env={**os.environ, "TERM": "xterm-256color", "RELCONSOLE_STATE_DIR": str(state)},
    )
    os.close(slave)
    try:
        read_until(master, b"checkout-api")
        os.write(master, b"a")  # one verified step, so there is something to keep
        read_until(master, b"verified")
        time.sleep(0.5)
        cpu_before = cpu_seconds(proc.pid)
        if sighup == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            os.close(master)  # the terminal goes away
        gone_at = time.monotonic()
        try:
            if sighup == "sigterm":
                # A live terminal keeps reading what the console writes.
                while proc.poll() is None and time.monotonic() - gone_at < 5:
                    with contextlib.suppress(OSError):
                        if select.select([master], [], [], 0.1)[0]:
                            os.read(master, 65536)
            proc.wait(timeout=max(0.1, 5 - (time.monotonic() - gone_at)))
        except subprocess.TimeoutExpired:
            spent = cpu_seconds(proc.pid) - cpu_before
            pytest.fail(f"still running 5 s after the hang-up ({spent:.1f} CPU-s spent)")
        assert time.monotonic() - gone_at < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if sighup == "sigterm":
            os.close(master)
    demo = state / "demo"
    world = json.loads(next(demo.glob("sim-*.json")).read_text())
    assert world["weight"] == 1
    lines = next((demo / "journal").glob("*.jsonl")).read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    assert json.loads(lines[-1])["outcome"] == "verified"
