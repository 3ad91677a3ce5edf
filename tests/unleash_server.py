"""A real Unleash server for the tests: unleash-server from npm on a throwaway PostgreSQL.

PostgreSQL refuses to run as root, and CI runs as root. So the cluster is created with
Debian's `initdb` (in /usr/lib/postgresql/<v>/bin) in a fresh folder under /tmp owned by
the `postgres` system user, and `initdb`/`postgres` are started as that user
(subprocess's `user=`); as any other user they simply run as that user. The server
listens on 127.0.0.1 on a free port only, with fsync off (nothing here must survive).
Unleash (from .cache/unleash, installed by scripts/ensure-test-deps.sh) migrates the
empty database on start and creates the admin token given in INIT_ADMIN_API_TOKENS.

On a laptop without node, PostgreSQL or the npm install this skips with the reason;
under CI=true it fails instead (like tests/tmux_helpers.py's require_tmux).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ports import free_ports

ROOT = Path(__file__).resolve().parent.parent
UNLEASH_DIR = ROOT / ".cache" / "unleash"
SERVER_JS = UNLEASH_DIR / "node_modules" / "unleash-server" / "dist" / "server.js"
ADMIN_TOKEN = "*:*.relconsole-test-admin-token"


@dataclass
class UnleashServer:
    url: str
    token: str
    startup_seconds: float
    log: Path
    # The running processes, for fault tests that stop them (tests/integration/
    # test_faults_unleash.py); None where the server was not started here.
    unleash_proc: subprocess.Popen | None = None
    postgres_proc: subprocess.Popen | None = None

    def admin(self) -> httpx.Client:
        """A plain client for seeding data the way an Unleash user would."""
        return httpx.Client(base_url=self.url, timeout=10,
                            headers={"Authorization": self.token})


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} — required under CI=true (scripts/ensure-test-deps.sh installs it)")
    pytest.skip(reason)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


def _wait(check, what: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:g}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def unleash_server() -> Iterator[UnleashServer]:
    node = shutil.which("node")
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if node is None:
        _unavailable("node is not installed (apt-get install nodejs)")
    if initdb is None or postgres is None:
        _unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    if not SERVER_JS.exists():
        _unavailable(f"unleash-server is not installed in {UNLEASH_DIR} "
                     "(run scripts/ensure-test-deps.sh)")
    run_as: dict[str, object] = {}
    if os.geteuid() == 0:
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
        run_as = {"user": pg_user.pw_uid, "group": pg_user.pw_gid, "extra_groups": []}
    started = time.monotonic()
    # Not under pytest's tmp dir: that is private to root, and postgres must get in.
    base = Path(tempfile.mkdtemp(prefix="relconsole-unleash-"))
    if run_as:
        os.chown(base, pg_user.pw_uid, pg_user.pw_gid)
    data, pg_log, un_log = base / "data", base / "postgres.log", base / "unleash.log"
    pg_proc: subprocess.Popen | None = None
    un_proc: subprocess.Popen | None = None
    try:
        subprocess.run(
            [initdb, "-D", str(data), "-U", "unleash", "--auth=trust", "-E", "UTF8",
             "--no-locale", "--no-sync"],
            check=True, capture_output=True, cwd=base, **run_as,
        )
        pg_port, http_port = free_ports(2)  # see tests/ports.py
        with open(pg_log, "wb") as out:
            pg_proc = subprocess.Popen(
                [postgres, "-D", str(data), "-p", str(pg_port), "-k", str(base),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                stdout=out, stderr=subprocess.STDOUT, cwd=base, **run_as,
            )

        def pg_up() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", pg_port), timeout=0.2
            ):
                return True
            return False

        _wait(pg_up, "PostgreSQL", 30, pg_proc, pg_log)
        # The database Unleash migrates into; `postgres` (the maintenance DB) exists.
        createdb = _pg_bin("createdb") or "createdb"
        for _ in range(50):
            made = subprocess.run([createdb, "-h", "127.0.0.1", "-p", str(pg_port),
                                   "-U", "unleash", "unleash"], capture_output=True)
            if made.returncode == 0:
                break
            time.sleep(0.1)  # accepting TCP a moment before it accepts logins
        else:
            raise RuntimeError(f"createdb failed: {made.stderr.decode(errors='replace')}")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),
            "TZ": "UTC",
            "DATABASE_URL": f"postgres://unleash@127.0.0.1:{pg_port}/unleash",
            "DATABASE_SSL": "false",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(http_port),
            "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN,
            # No calls out of this machine: no version check, no telemetry.
            "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "1",
            "LOG_LEVEL": "warn",
        }
        url = f"http://127.0.0.1:{http_port}"
        with open(un_log, "wb") as out:
            un_proc = subprocess.Popen([node, str(SERVER_JS)], cwd=UNLEASH_DIR, env=env,
                                       stdout=out, stderr=subprocess.STDOUT)

        def unleash_up() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(unleash_up, "Unleash", 120, un_proc, un_log)
        yield UnleashServer(url, ADMIN_TOKEN, time.monotonic() - started, un_log,
                            unleash_proc=un_proc, postgres_proc=pg_proc)
    finally:
        _stop(un_proc)
        _stop(pg_proc, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        shutil.rmtree(base, ignore_errors=True)
