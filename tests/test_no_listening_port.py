"""relconsole opens no listening port: not the TUI, not the demo, not a headless run.

An on-call console on a bastion host must not become a way in. While the real program
runs, every socket it (or any process it started) holds is looked up in the kernel's
tables, /proc/<pid>/fd → socket inode → /proc/<pid>/net/{tcp,tcp6,udp,udp6,unix}, and
none may be listening: no TCP socket in LISTEN, no bound UDP socket waiting for
datagrams, no listening Unix socket. The detector itself is checked first against
helper processes that do listen, so a detector that sees nothing cannot pass the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_crash_and_signals import fast_config
from tests.tmux_helpers import TmuxConsole, pane_children

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(),
                                reason="needs Linux /proc/<pid>/net")

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"  # TCP_CLOSE: a bound UDP socket with no peer receives from anyone
UNIX_ACCEPTCON = 0x00010000  # __SO_ACCEPTCON: listen() was called


@dataclass(frozen=True)
class Listener:
    pid: int
    kind: str  # tcp, tcp6, udp, udp6, unix
    local: str
    inode: int

    def __str__(self) -> str:
        return f"pid {self.pid} {self.kind} {self.local} (inode {self.inode})"


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from the parent links in /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(parents.get(current, []))
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def _hex_addr(text: str) -> str:
    host, port = text.split(":")
    return f"{host}:{int(port, 16)}"


def listeners_of(pid: int) -> tuple[list[Listener], int]:
    """Listening sockets held by `pid`, and how many sockets it holds in all."""
    inodes = socket_inodes(pid)
    found: list[Listener] = []
    for kind in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], int(cols[9])
            if inode not in inodes:
                continue
            listening = state == TCP_LISTEN if kind.startswith("tcp") else (
                state == UDP_UNCONNECTED
            )
            if listening:
                found.append(Listener(pid, kind, _hex_addr(local), inode))
    try:
        lines = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
    except OSError:
        lines = []
    for line in lines:
        cols = line.split()
        flags, inode = int(cols[3], 16), int(cols[6])
        if inode in inodes and flags & UNIX_ACCEPTCON:
            path = cols[7] if len(cols) > 7 else "(unnamed)"
            found.append(Listener(pid, "unix", path, inode))
    return found, len(inodes)


def listeners_under(pid: int) -> tuple[list[Listener], int, int]:
    """Listening sockets of `pid` and all its descendants; also processes and sockets seen."""
    found: list[Listener] = []
    processes = descendants(pid)
    sockets = 0
    for each in processes:
        listening, held = listeners_of(each)
        found += listening
        sockets += held
    return found, len(processes), sockets


# ----------------------------------------------------------------------- the detector


LISTENING_HELPER = textwrap.dedent("""
    import socket, sys, time
    kind = sys.argv[1]
    if kind == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0)); s.listen()
    elif kind == "tcp6":
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0)); s.listen()
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
    elif kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(sys.argv[2]); s.listen()
    elif kind == "client":  # a connected TCP socket only: not listening
        s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    print(s.getsockname(), flush=True)
    time.sleep(60)
""")


def start_helper(tmp_path: Path, *args: str, via_shell: bool = False) -> subprocess.Popen:
    script = tmp_path / "listen.py"
    script.write_text(LISTENING_HELPER)
    argv = [sys.executable, str(script), *args]
    if via_shell:
        # The listener is a grandchild: the detector must walk the process tree.
        argv = ["sh", "-c", " ".join(argv) + " & wait"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    return proc


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def wait_until_listening(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline(), "the helper did not start"


@pytest.mark.parametrize("kind", ["tcp", "tcp6", "udp", "unix"])
def test_the_detector_sees_a_listening_socket(tmp_path: Path, kind: str) -> None:
    if kind == "tcp6" and not Path("/proc/self/net/tcp6").exists():
        pytest.skip("no IPv6")
    args = [kind] + ([str(tmp_path / "helper.sock")] if kind == "unix" else [])
    proc = start_helper(tmp_path, *args)
    try:
        wait_until_listening(proc)
        found, _, sockets = listeners_under(proc.pid)
        assert sockets >= 1
        assert [listener.kind for listener in found] == [kind], found
    finally:
        stop(proc)


def test_the_detector_sees_a_listener_in_a_grandchild(tmp_path: Path) -> None:
    proc = start_helper(tmp_path, "tcp", via_shell=True)
    try:
        wait_until_listening(proc)
        found, processes, _ = listeners_under(proc.pid)
        assert processes >= 2
        assert found and found[0].pid != proc.pid and found[0].kind == "tcp"
    finally:
        stop(proc)


def test_the_detector_does_not_count_a_connected_client(tmp_path: Path) -> None:
    server = start_helper(tmp_path, "tcp")
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip().strip("()").split(",")[1].strip()
        client = start_helper(tmp_path, "client", port)
        try:
            wait_until_listening(client)
            found, _, sockets = listeners_under(client.pid)
            assert sockets == 1 and found == []
        finally:
            stop(client)
    finally:
        stop(server)


# ----------------------------------------------------------------------- relconsole


def watch_for_listeners(pid: int, seconds: float) -> tuple[list[Listener], int, int]:
    """Sample every 100 ms for `seconds`: a port opened only for a moment still shows."""
    seen: dict[tuple[int, str, int], Listener] = {}
    samples = 0
    most_sockets = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found, _, sockets = listeners_under(pid)
        for listener in found:
            seen[(listener.pid, listener.kind, listener.inode)] = listener
        most_sockets = max(most_sockets, sockets)
        samples += 1
        time.sleep(0.1)
    return list(seen.values()), samples, most_sockets


@pytest.mark.tmux
def test_the_demo_tui_in_a_terminal_opens_no_listening_port(tmp_path: Path) -> None:
    console = TmuxConsole(
        ["demo", "--scenario", "bad-canary", "--speed", "30"],
        env={"RELCONSOLE_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color",
             "TZ": "UTC"},
    )
    try:
        console.wait_for(lambda s: "checkout-api" in s, timeout=20)
        (pid,) = pane_children(console)
        # Through advancing, the gate tripping and the rollback, plus keys and help.
        found, samples, sockets = watch_for_listeners(pid, 3.0)
        console.keys("?")
        console.wait_for(lambda s: "relconsole — keys" in s, timeout=10)
        more, more_samples, _ = watch_for_listeners(pid, 1.0)
        console.keys("Escape")
        console.wait_for(lambda s: "ROLLED BACK" in s, timeout=60)
        after, last_samples, _ = watch_for_listeners(pid, 1.0)
        # The detector looked at the right process: asyncio's self-pipe is a socket.
        assert sockets >= 1, "no sockets seen at all: the detector is not looking"
        assert found + more + after == [], [str(x) for x in found + more + after]
        print(f"demo TUI: {samples + more_samples + last_samples} samples, "
              f"{sockets} sockets held, none listening")
        console.keys("q")
        console.wait_for(lambda s: "EXITED=0" in s, timeout=15)
    finally:
        console.close()


def test_a_headless_run_opens_no_listening_port(tmp_path: Path) -> None:
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(cfg), "--headless", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)}, start_new_session=True,
    )
    try:
        found, samples, sockets = watch_for_listeners(proc.pid, 4.0)
        assert proc.poll() is None, "the run ended before it could be watched"
        assert sockets >= 1, "no sockets seen at all: the detector is not looking"
        assert found == [], [str(x) for x in found]
        print(f"headless run: {samples} samples, {sockets} sockets held, none listening")
    finally:
        stop(proc)
