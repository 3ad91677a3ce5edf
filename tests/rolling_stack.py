"""A fleet of sandbox services behind its own HAProxy, for the rolling-batch tests.

Each test gets its own: N service processes (tests/data/rolling_fleet.py, which serves
examples/sandbox/service.py's app) on free ports of this worker's slice, started on the
old version, and an HAProxy whose one backend lists them all with a fast health check.
The shared sandbox is not touched. Everything started here is stopped by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.ports import free_ports
from tests.sandbox_stack import launcher, require_programs

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "tests" / "data" / "rolling_fleet.py"
BACKEND = "pool"
OLD, NEW = "1.0.0", "1.1.0"


def hook(verb: str, *args: str) -> list[str]:
    """A hook argv for the fleet script: no shell, the interpreter this run uses."""
    return [sys.executable, str(FLEET), verb, *args]


class Fleet:
    def __init__(self, folder: Path, names: tuple[str, ...], broken: tuple[str, ...] = ()
                 ) -> None:
        self.folder = folder
        self.names = names
        ports = free_ports(len(names) + 1)
        self.ports = dict(zip(names, ports, strict=False))
        self.frontend = ports[-1]
        self.socket = folder / "haproxy.sock"
        (folder / "fleet.json").write_text(json.dumps(
            {"servers": self.ports, "broken": list(broken)}))
        self.haproxy: subprocess.Popen[bytes] | None = None

    # -- the services

    def start_services(self, version: str = OLD) -> None:
        for name in self.names:
            subprocess.run(hook("deploy", str(self.folder), name, version), check=True)
        (self.folder / "deploys.log").write_text("")  # the tests count the release's own

    def deploys(self) -> list[str]:
        """'s1 1.1.0' for each deploy since the fleet started, in the order they ran."""
        return (self.folder / "deploys.log").read_text().split("\n")[:-1]

    def version_of(self, name: str) -> str:
        done = subprocess.run(hook("running", str(self.folder), name), capture_output=True,
                              text=True, check=True)
        return done.stdout.strip()

    def drained(self) -> set[str]:
        path = self.folder / "drained.json"
        return set(json.loads(path.read_text())) if path.exists() else set()

    # -- HAProxy

    def haproxy_config(self) -> str:
        lines = "\n".join(f"    server {n} 127.0.0.1:{p}" for n, p in self.ports.items())
        return f"""global
    stats socket {self.socket} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend rolling
    bind 127.0.0.1:{self.frontend}
    default_backend {BACKEND}
backend {BACKEND}
    balance roundrobin
    option httpchk GET /healthz
    default-server check inter 200ms rise 2 fall 2
{lines}
"""

    def start_haproxy(self) -> None:
        program = launcher.find_program("haproxy")
        assert program is not None
        cfg = self.folder / "haproxy.cfg"
        cfg.write_text(self.haproxy_config())
        log = open(self.folder / "haproxy.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self.haproxy = subprocess.Popen([program, "-db", "-f", str(cfg)],
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.haproxy.poll() is not None:
                raise RuntimeError("haproxy exited:\n" + self.haproxy_log()[-3000:])
            if self.socket.exists():
                stat = self.stat()
                if stat and all(stat[n]["status"] == "UP" for n in self.names):
                    return
            time.sleep(0.05)
        raise RuntimeError("haproxy's servers never all came UP:\n" + self.haproxy_log()[-3000:])

    def haproxy_log(self) -> str:
        """HAProxy's own account of every state change (-db logs them to stderr)."""
        return (self.folder / "haproxy.log").read_text(errors="replace")

    def runtime(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(self.socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stat(self) -> dict[str, dict[str, str]]:
        """HAProxy's own `show stat`, one row a server of the pool."""
        lines = [x for x in self.runtime("show stat").splitlines() if x.strip()]
        header = lines[0][2:].split(",")
        rows = (dict(zip(header, x.split(","), strict=False)) for x in lines[1:])
        return {r["svname"]: r for r in rows
                if r.get("pxname") == BACKEND and r["svname"] not in ("FRONTEND", "BACKEND")}

    def admin_states(self) -> dict[str, int]:
        """HAProxy's own `show servers state`: srv_admin_state per server (0 = ready)."""
        lines = [x for x in self.runtime(f"show servers state {BACKEND}").splitlines()
                 if x.strip()]
        at = next(i for i, x in enumerate(lines) if x.startswith("# "))  # after "1" (format)
        header = lines[at][2:].split()
        rows = [dict(zip(header, x.split(), strict=False)) for x in lines[at + 1:]]
        return {r["srv_name"]: int(r["srv_admin_state"]) for r in rows}

    def answers(self, count: int) -> dict[str, int]:
        """Which version answered `count` requests sent through the frontend."""
        seen: dict[str, int] = {}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for _ in range(count):
            with opener.open(f"http://127.0.0.1:{self.frontend}/", timeout=2) as answer:
                text = answer.read().decode().strip()
            version = text.rpartition(" ")[2]
            seen[version] = seen.get(version, 0) + 1
        return seen

    # -- the end

    def stop(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(5)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
        for name in self.names:
            pid_file = self.folder / f"{name}.pid"
            try:
                pid = int(pid_file.read_text())
            except (OSError, ValueError):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def fleet(folder: Path, names: tuple[str, ...], *, broken: tuple[str, ...] = (),
          haproxy: bool = True) -> Iterator[Fleet]:
    if haproxy:
        require_programs()
    box = Fleet(folder, names, broken)
    try:
        box.start_services()
        if haproxy:
            box.start_haproxy()
        yield box
    finally:
        box.stop()
