"""A small fleet of sandbox services for the rolling tests, and the hooks that act on it.

    rolling_fleet.py deploy  STATE SERVER VERSION   restart SERVER's process on VERSION
    rolling_fleet.py running STATE SERVER           print the version SERVER answers with
    rolling_fleet.py health  STATE SERVER           exit 0 when SERVER's /healthz says 200
    rolling_fleet.py drain|ready STATE SERVER       take SERVER out of / back into rotation
    rolling_fleet.py serve --port P --version V [--broken] --tag STATE

STATE is a folder holding fleet.json: {"servers": {name: port}, "broken": ["s3@1.1.0"]}
— a version listed as broken for a server starts, answers its version, and fails
/healthz with 503, as a bad release does. Each server's pid is in STATE/NAME.pid, its
log in STATE/NAME.log, every deploy in STATE/deploys.log (in order), and `drain`/`ready`
keep the servers out of rotation in STATE/drained.json (the command provider's own load
balancer, for the tests without HAProxy). The service is examples/sandbox/service.py's,
so it answers like the sandbox. Standard library only; no shell anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "examples" / "sandbox"))

import service  # noqa: E402


def _fleet(state: Path) -> dict[str, Any]:
    return json.loads((state / "fleet.json").read_text())


def _get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def stop(state: Path, server: str) -> None:
    pid_file = state / f"{server}.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    pid_file.unlink(missing_ok=True)


def start(state: Path, server: str, version: str) -> None:
    fleet = _fleet(state)
    port = int(fleet["servers"][server])
    broken = f"{server}@{version}" in fleet.get("broken", [])
    argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(port),
            "--version", version, "--tag", str(state)] + (["--broken"] if broken else [])
    with open(state / f"{server}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    (state / f"{server}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{server} exited {proc.returncode} while starting on {version}")
        with contextlib.suppress(OSError):
            if _get(f"http://127.0.0.1:{port}/knobs", 0.5)[0] == 200:
                return
        time.sleep(0.02)
    sys.exit(f"{server} did not answer within 10s on {version}")


def running(state: Path, server: str) -> None:
    port = int(_fleet(state)["servers"][server])
    try:
        code, body = _get(f"http://127.0.0.1:{port}/knobs")
    except OSError as exc:
        sys.exit(f"{server} does not answer: {exc}")
    if code != 200:
        sys.exit(f"{server} answered {code}")
    print(json.loads(body)["version"])


def healthy(state: Path, server: str) -> None:
    port = int(_fleet(state)["servers"][server])
    try:
        code, _ = _get(f"http://127.0.0.1:{port}/healthz")
    except OSError as exc:
        sys.exit(f"{server} does not answer: {exc}")
    if code != 200:
        sys.exit(f"{server} /healthz answered {code}")


def rotation(state: Path, server: str, out: bool) -> None:
    path = state / "drained.json"
    drained = set(json.loads(path.read_text())) if path.exists() else set()
    (drained.add if out else drained.discard)(server)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted(drained)))
    tmp.replace(path)


def serve(port: int, version: str, broken: bool) -> None:
    handler = service.make_handler(service.State(version))

    class Broken(handler):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            if self.path.startswith("/healthz"):
                self._send(503, f"{version} is broken\n")
                return
            super().do_GET()

    server = service.Server(("127.0.0.1", port), Broken if broken else handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.1)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        parser = argparse.ArgumentParser()
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--version", required=True)
        parser.add_argument("--tag", default="")
        parser.add_argument("--broken", action="store_true")
        args = parser.parse_args(sys.argv[2:])
        serve(args.port, args.version, args.broken)
        return
    verb, state, server, *rest = sys.argv[1:]
    folder = Path(state)
    if verb == "deploy":
        with open(folder / "deploys.log", "a") as log:  # the order deploys ran in
            log.write(f"{server} {rest[0]}\n")
        stop(folder, server)
        start(folder, server, rest[0])
    elif verb == "running":
        running(folder, server)
    elif verb == "health":
        healthy(folder, server)
    elif verb in ("drain", "ready"):
        rotation(folder, server, out=verb == "drain")
    else:
        sys.exit(f"unknown verb {verb}")


if __name__ == "__main__":
    main()
