"""Drive relconsole in a real terminal: tmux runs it, send-keys types, capture-pane reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require_tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is required under CI=true (scripts/ensure-test-deps.sh installs it)")
        pytest.skip("tmux not installed (apt-get install tmux)")
    return path


class TmuxConsole:
    def __init__(self, args: list[str], *, size: tuple[int, int] = (120, 40),
                 env: dict[str, str] | None = None) -> None:
        self.tmux = require_tmux()
        self.socket = f"relconsole-test-{uuid.uuid4().hex[:8]}"
        self.name = "rc"
        env_args: list[str] = []
        for key, value in (env or {}).items():
            env_args += ["-e", f"{key}={value}"]
        command = " ".join([sys.executable, "-m", "relconsole", *args])
        self.started = time.monotonic()
        subprocess.run(
            [self.tmux, "-L", self.socket, "-f", "/dev/null", "new-session", "-d",
             "-s", self.name, "-x", str(size[0]), "-y", str(size[1]), *env_args,
             f"cd {ROOT} && {command}; echo EXITED=$?; sleep 30"],
            check=True,
        )

    def screen(self) -> str:
        out = subprocess.run(
            [self.tmux, "-L", self.socket, "capture-pane", "-p", "-t", self.name],
            capture_output=True, text=True,
        )
        return out.stdout

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"screen never matched within {timeout}s; last screen:\n{text}")

    def keys(self, *keys: str) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "send-keys", "-t", self.name, *keys],
                       check=True)

    def close(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True)


def pane_children(console: TmuxConsole) -> list[int]:
    """PIDs of the processes the pane's shell started (the console itself)."""
    shell = subprocess.run(
        [console.tmux, "-L", console.socket, "display-message", "-p", "-t", console.name,
         "#{pane_pid}"], capture_output=True, text=True, check=True,
    ).stdout.strip()
    out = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(
        f"/proc/{pid}/stat").read_text()
