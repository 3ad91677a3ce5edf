"""Start and stop the sandbox: a real Prometheus and a real HAProxy in front of a two-version
service, with a steady load, all on loopback.

    python3 examples/sandbox/launcher.py up        # `make sandbox`
    python3 examples/sandbox/launcher.py down      # `make sandbox-down`
    python3 examples/sandbox/launcher.py knob canary error_rate=0.05 latency_ms=200
    python3 examples/sandbox/launcher.py status

One implementation for `make sandbox` and the integration tests (tests/integration/),
which start their own copy on free ports in a temporary folder. Standard library only,
so it runs before the virtualenv exists. Prometheus and HAProxy come from Debian's
packages; `up` installs them when they are missing and it runs as root.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_RUN_DIR = HERE / ".run"
STABLE_VERSION = "1.0.0"
CANARY_VERSION = "1.1.0"
BACKEND = "app"
PROGRAMS = ("prometheus", "haproxy")
SERVICES = ("stable", "canary", "haproxy", "prometheus", "loadgen")


class SandboxError(RuntimeError):
    """Something the person starting the sandbox must fix; printed as one message."""


@dataclass(frozen=True)
class Ports:
    prometheus: int = 19090
    frontend: int = 18080
    stable: int = 18081
    canary: int = 18082
    admin: int = 18099  # HAProxy's runtime API over TCP (level admin, loopback only)
    preview: int = 18083  # blue-green: a frontend that reaches the canary server only

    @classmethod
    def free(cls) -> Ports:
        """Six ports nobody listens on right now (for tests running beside a sandbox)."""
        sockets = []
        try:
            for _ in range(6):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                sockets.append(s)
            numbers = [s.getsockname()[1] for s in sockets]
        finally:
            for s in sockets:
                s.close()
        return cls(*numbers)


# ----------------------------------------------------------------------------- programs


def find_program(name: str) -> str | None:
    # haproxy lives in /usr/sbin, which is not on a normal user's PATH.
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/usr/local/bin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if find_program(p) is None]


def ensure_programs(install: bool = True) -> dict[str, str]:
    """Paths of prometheus and haproxy, installing them from Debian's packages if allowed."""
    missing = missing_programs()
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {' '.join(missing)} from Debian's packages …", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=env, check=False, stdout=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise SandboxError(f"apt-get install {' '.join(missing)} failed "
                               f"(exit {done.returncode})")
        missing = missing_programs()
    if missing:
        raise SandboxError(
            f"not installed: {' '.join(missing)}. Install them (Debian/Ubuntu: "
            f"sudo apt-get install --no-install-recommends {' '.join(missing)}) and try "
            "again. The sandbox runs its own processes on its own ports; a prometheus or "
            "haproxy service the package may start is not used."
        )
    return {p: str(find_program(p)) for p in PROGRAMS}


# ----------------------------------------------------------------------------- configs


def prometheus_config(ports: Ports) -> str:
    return f"""# written by examples/sandbox/launcher.py
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: sandbox
    static_configs:
      - targets: ["127.0.0.1:{ports.stable}", "127.0.0.1:{ports.canary}"]
"""


# The map files of haproxy_config's cohort ACLs, by cohort kind; `up` writes them empty.
COHORT_MAPS = {"header": "cohort-header.map", "cookie": "cohort-cookie.map",
               "hash": "cohort-hash.map"}


def haproxy_config(ports: Ports, run_dir: Path) -> str:
    return f"""# written by examples/sandbox/launcher.py
global
    stats socket {run_dir / "haproxy.sock"} mode 600 level admin
    # A read-mostly socket, as monitoring gets it: `set weight` answers Permission denied.
    stats socket {run_dir / "haproxy-op.sock"} mode 600 level operator
    stats socket ipv4@127.0.0.1:{ports.admin} level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 15s
    timeout server 15s

frontend sandbox
    bind 127.0.0.1:{ports.frontend}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    option httpchk GET /healthz
    # A/B cohorts (release.strategy: ab): relconsole fills these maps (`add map`), one per
    # cohort kind; a request they match goes to the canary, whatever its weight.
    acl rc_header req.hdr(X-User-Group),map({run_dir / COHORT_MAPS["header"]}) -m found
    acl rc_cookie req.cook(rc_cohort),map({run_dir / COHORT_MAPS["cookie"]}) -m found
    acl rc_sticky req.hdr(X-User-Id),crc32,mod(100),map({run_dir / COHORT_MAPS["hash"]}) -m found
    use-server canary if rc_header || rc_cookie || rc_sticky
    server stable 127.0.0.1:{ports.stable} weight 100 check inter 1s
    server canary 127.0.0.1:{ports.canary} weight 0 check inter 1s

# Blue-green's preview (traffic `preview:`): green (the canary) alone, on its own port,
# so it is checked healthy before any user request reaches it.
frontend preview
    bind 127.0.0.1:{ports.preview}
    default_backend preview

backend preview
    option httpchk GET /healthz
    server canary 127.0.0.1:{ports.canary} check inter 1s
"""


def metric_query(metric: str, window: str) -> str:
    if metric == "error_rate":
        return (f'sum(rate(http_requests_total{{version="{{{{version}}}}",code=~"5.."}}[{window}]))'
                f' / sum(rate(http_requests_total{{version="{{{{version}}}}"}}[{window}]))')
    q = {"latency_p50": "0.5", "latency_p95": "0.95", "latency_p99": "0.99"}[metric]
    return (f"histogram_quantile({q}, sum by (le) (rate("
            f'http_request_duration_seconds_bucket{{version="{{{{version}}}}"}}[{window}])))')


def relconsole_config(
    ports: Ports = Ports(),
    *,
    socket_path: Path | None = None,
    steps: tuple[tuple[int, str], ...] = ((10, "20s"), (50, "30s"), (100, "")),
    auto_advance: bool = False,
    window: str = "5s",
    failure_limit: int = 2,
    inconclusive_limit: int = 5,
    state_dir: str = ".run/state",
    call_timeout: str = "",
    gates: tuple[str, ...] = (),
) -> str:
    """The relconsole config for a sandbox on these ports (the checked-in file is the default).

    The runtime API is reached over TCP (address:) unless `socket_path` is given. The
    error rate is the design's query as written (no `or vector(0)`): relconsole reads
    its counters, so a 5xx series that does not exist yet is 0 errors. `gates`, each a
    flow mapping like "{metric: error_rate, max: 0.05}", replace the default gates.
    """
    if socket_path is not None:
        where = f"socket: {json.dumps(str(socket_path))}"
    else:
        where = f'address: "127.0.0.1:{ports.admin}"'
    step_lines = "\n".join(
        f"    - {{weight: {w}, bake: {b}}}" if b else f"    - {{weight: {w}}}" for w, b in steps
    )
    metric_lines = "\n".join(
        f"  {name}:\n    unit: {'ratio' if name == 'error_rate' else 'seconds'}\n"
        f"    query: '{metric_query(name, window)}'"
        for name in ("error_rate", "latency_p50", "latency_p95", "latency_p99")
    )
    timeout_line = f"\n  call_timeout: {call_timeout}" if call_timeout else ""
    limits = f"failure_limit: {failure_limit}, inconclusive_limit: {inconclusive_limit}"
    gates = gates or (
        f"{{metric: error_rate, max: 0.01, max_increase: 0.01, {limits}}}",
        f"{{metric: latency_p99, max: 0.1, max_increase: 0.05, {limits}}}",
    )
    gate_lines = "\n".join(f"  - {gate}" for gate in gates)
    return f"""# relconsole attached to the sandbox (`make sandbox`): a real Prometheus and a real
# HAProxy on loopback. Written by examples/sandbox/launcher.py (relconsole_config).
#   .venv/bin/relconsole run -c examples/sandbox/relconsole.yaml
release:
  service: sandbox-api
  version: {CANARY_VERSION}
  environment: sandbox
  strategy: canary
  steps:
{step_lines}
  auto_advance: {'true' if auto_advance else 'false'}
  auto_rollback: true
  poll_interval: 1s{timeout_line}
providers:
  metrics: {{type: prometheus, url: "http://127.0.0.1:{ports.prometheus}"}}
  traffic: {{type: haproxy, {where}, backend: {BACKEND}, stable: stable, canary: canary}}
versions: {{canary: "{CANARY_VERSION}", baseline: "{STABLE_VERSION}"}}
# Windows of {window}: Prometheus scrapes every second, so a fault shows within seconds.
metrics:
{metric_lines}
gates:
{gate_lines}
state: {{dir: {state_dir}}}
"""


# ----------------------------------------------------------------------------- processes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, parent gone, nobody reaping) is not a running sandbox process.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _ours(pid: int, marker: str) -> bool:
    """Whether pid still runs a sandbox process (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return _alive(pid)  # no /proc: trust the pid file
    return marker in cmdline


def _http(url: str, timeout: float = 1.0, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Sandbox:
    """The five processes of one sandbox, their ports and their run folder."""

    def __init__(self, run_dir: Path = DEFAULT_RUN_DIR, ports: Ports | None = None,
                 rate: float = 40.0, lazy_errors: bool = False) -> None:
        self.run_dir = Path(run_dir).absolute()
        self.ports = ports or Ports()
        self.rate = rate
        self.lazy_errors = lazy_errors  # the services do not pre-create their 5xx series
        self.pids: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.programs: dict[str, str] = {}
        self._started_at: dict[str, float] = {}
        self._first_scrape: dict[str, float] = {}

    # -- where things are

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "haproxy.sock"

    @property
    def operator_socket_path(self) -> Path:
        """The runtime API at `level operator`: reads work, changes are refused."""
        return self.run_dir / "haproxy-op.sock"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "sandbox.json"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    def _port(self, role: str) -> int:
        return {"stable": self.ports.stable, "canary": self.ports.canary}[role]

    # -- persistence between `up` and `down` (separate processes)

    def _save(self) -> None:
        data = {"ports": asdict(self.ports), "rate": self.rate, "pids": self.pids,
                "lazy_errors": self.lazy_errors}
        self.state_file.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, run_dir: Path = DEFAULT_RUN_DIR) -> Sandbox | None:
        path = Path(run_dir) / "sandbox.json"
        try:
            data = json.loads(path.read_text())
            box = cls(run_dir, Ports(**data["ports"]), float(data["rate"]),
                      bool(data.get("lazy_errors", False)))
            box.pids = {k: int(v) for k, v in data["pids"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return box

    def running(self) -> dict[str, bool]:
        marker = str(self.run_dir)
        return {name: pid > 0 and _alive(pid) and _ours(pid, marker)
                for name, pid in self.pids.items()}

    # -- starting

    def _argv(self, name: str) -> list[str]:
        tag = ["--tag", str(self.run_dir)]
        py = sys.executable
        if name in ("stable", "canary"):
            version = STABLE_VERSION if name == "stable" else CANARY_VERSION
            lazy = ["--lazy-errors"] if self.lazy_errors else []
            return [py, str(HERE / "service.py"), "--version", version,
                    "--port", str(self._port(name)), *lazy, *tag]
        if name == "haproxy":
            return [self.programs["haproxy"], "-db", "-f", str(self.run_dir / "haproxy.cfg")]
        if name == "prometheus":
            return [
                self.programs["prometheus"],
                f"--config.file={self.run_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.run_dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
                "--storage.tsdb.retention.time=2h",
                "--log.level=warn",
            ]
        if name == "loadgen":
            return [py, str(HERE / "loadgen.py"), "--target",
                    f"127.0.0.1:{self.ports.frontend}", "--rate", f"{self.rate:g}", *tag]
        raise KeyError(name)

    def start(self, name: str, timeout: float = 30.0) -> None:
        """Start one process and wait until it answers."""
        if not self.programs:
            self.programs = ensure_programs(install=False)
        log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                self._argv(name), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.run_dir, start_new_session=True,  # outlives `make sandbox`
            )
        finally:
            log.close()
        self.procs[name] = proc
        self.pids[name] = proc.pid
        self._started_at[name] = time.time()
        self._first_scrape.pop(name, None)
        self._save()
        self._wait_ready(name, proc, timeout)

    def _wait_ready(self, name: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (self.run_dir / f"{name}.log").read_text(errors="replace")[-600:]
                raise SandboxError(f"{name} exited with {proc.returncode} while starting:\n{tail}")
            if self._ready(name):
                return
            time.sleep(0.1)
        raise SandboxError(f"{name} did not become ready within {timeout:g}s "
                           f"(see {self.run_dir / (name + '.log')})")

    def _ready(self, name: str) -> bool:
        try:
            if name in ("stable", "canary"):
                return _http(f"http://127.0.0.1:{self._port(name)}/healthz")[0] == 200
            if name == "haproxy":
                return "(initial" in self.runtime(f"get weight {BACKEND}/stable")
            if name == "prometheus":
                if _http(f"{self.prometheus_url}/-/ready")[0] != 200:
                    return False
                # Ready to serve is not ready to gate: `up` would still answer from before a
                # restart (5 min lookback), and the first scrape comes only ~5 s after
                # start (discovery sends targets at most every 5 s). Wait for two fresh
                # scrapes of both versions, so a rate() over a few seconds has two points.
                stamps = [float(r["value"][1]) for r in self.query('timestamp(up{job="sandbox"})')]
                fresh = [t for t in stamps if t > self._started_at.get(name, 0.0)]
                if len(fresh) < 2:
                    return False
                first = self._first_scrape.setdefault(name, max(fresh))
                return min(fresh) >= first + 0.9
            return True  # loadgen has nothing to ask
        except (OSError, ValueError):
            return False

    def up(self, *, owner_pid: int | None = None) -> None:
        """Start everything; with owner_pid, everything stops when that process dies.

        `make sandbox` leaves the processes running on purpose. A test run passes its own
        pid, so a test process killed mid-run (a CI timeout) leaves no sandbox behind.
        """
        self.programs = ensure_programs(install=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.operator_socket_path)) > 100:
            raise SandboxError(f"run folder path too long for a Unix socket: {self.run_dir}")
        (self.run_dir / "prometheus.yml").write_text(prometheus_config(self.ports))
        (self.run_dir / "haproxy.cfg").write_text(haproxy_config(self.ports, self.run_dir))
        for name in COHORT_MAPS.values():  # HAProxy refuses to start on a missing map file
            (self.run_dir / name).write_text("")
        for path in (self.socket_path, self.operator_socket_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        try:
            if owner_pid is not None:
                self._start_reaper(owner_pid)
            for name in SERVICES:
                self.start(name)
        except BaseException:
            self.down()
            raise

    def _start_reaper(self, owner_pid: int) -> None:
        argv = [sys.executable, str(HERE / "launcher.py"), "--run-dir", str(self.run_dir),
                "reap", "--owner", str(owner_pid)]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs["reaper"] = proc
        self.pids["reaper"] = proc.pid
        self._save()

    # -- stopping

    def stop(self, name: str, timeout: float = 10.0) -> None:
        pid = self.pids.pop(name, None)
        proc = self.procs.pop(name, None)
        # Every sandbox process names the run folder on its command line; a pid that no
        # longer does was reused by someone else and is left alone.
        if pid and (proc is not None or _ours(pid, str(self.run_dir))):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None if proc is not None else not _alive(pid):
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if proc is not None:
                    proc.wait(5)
        if self.run_dir.exists():
            self._save()

    def down(self) -> None:
        for name in reversed(SERVICES):
            self.stop(name)
        if self.pids.get("reaper") not in (None, os.getpid()):
            self.stop("reaper", timeout=2.0)
        for path in (self.socket_path, self.operator_socket_path, self.state_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- talking to it

    def runtime(self, command: str, timeout: float = 2.0, path: Path | None = None) -> str:
        """One runtime API command over the Unix socket; the raw answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(path or self.socket_path))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def weights(self) -> dict[str, int]:
        out = {}
        for server in ("stable", "canary"):
            reply = self.runtime(f"get weight {BACKEND}/{server}").strip()
            out[server] = int(reply.split()[0])
        return out

    def query(self, promql: str) -> list[Any]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = _http(url, timeout=2.0)
        if status != 200:
            raise ValueError(f"prometheus answered {status}: {body[:200]!r}")
        return json.loads(body)["data"]["result"]

    def knobs(self, role: str, **values: float) -> dict[str, Any]:
        query = urllib.parse.urlencode(values)
        status, body = _http(f"http://127.0.0.1:{self._port(role)}/knobs?{query}", timeout=2.0)
        doc = json.loads(body)
        if status != 200:
            raise SandboxError(f"{role}: {doc.get('error', status)}")
        return doc

    def reset(self) -> None:
        """Knobs off, canary at weight 0, both servers ready: the state `up` leaves."""
        for role in ("stable", "canary"):
            self.knobs(role, error_rate=0, latency_ms=0, lazy_errors=int(self.lazy_errors))
        self.runtime(f"set weight {BACKEND}/stable 100; set weight {BACKEND}/canary 0; "
                     f"set server {BACKEND}/stable state ready; "
                     f"set server {BACKEND}/canary state ready")

    def describe(self) -> str:
        p = self.ports
        return (
            f"Prometheus  {self.prometheus_url}  (scrapes every 1s)\n"
            f"HAProxy     http://127.0.0.1:{p.frontend}  runtime API 127.0.0.1:{p.admin} "
            f"and {self.socket_path}\n"
            f"stable      {STABLE_VERSION} on 127.0.0.1:{p.stable}\n"
            f"canary      {CANARY_VERSION} on 127.0.0.1:{p.canary}\n"
            f"load        {self.rate:g} req/s at the frontend\n"
            f"logs        {self.run_dir}/*.log"
        )


# ----------------------------------------------------------------------------- CLI


def _rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def cmd_up(args: argparse.Namespace) -> int:
    existing = Sandbox.load(args.run_dir)
    if existing is not None and existing.pids and all(existing.running().values()):
        print("the sandbox is already running:\n" + existing.describe())
        _instructions()
        return 0
    if existing is not None:
        existing.down()  # half-dead leftovers of an earlier run
    box = Sandbox(args.run_dir, Ports(), rate=args.rate, lazy_errors=args.lazy_errors)
    box.up()
    print("sandbox up:\n" + box.describe())
    _instructions()
    return 0


def _instructions() -> None:
    config = _rel(HERE / "relconsole.yaml")
    relconsole = ROOT / ".venv" / "bin" / "relconsole"
    launcher = _rel(HERE / "launcher.py")
    print(
        "\nattach relconsole:\n"
        f"  {_rel(relconsole) if relconsole.exists() else 'relconsole'} run -c {config}\n"
        "inject a fault into the canary (5% errors; latency_ms=200 for slowness; 0 heals):\n"
        f"  python3 {launcher} knob canary error_rate=0.05\n"
        "stop it all:\n"
        "  make sandbox-down"
    )


def cmd_down(args: argparse.Namespace) -> int:
    box = Sandbox.load(args.run_dir)
    if box is None:
        print("no sandbox is running here")
        return 0
    box.down()
    print("sandbox stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    box = Sandbox.load(args.run_dir)
    if box is None:
        print("no sandbox is running here")
        return 1
    for name, ok in box.running().items():
        print(f"{name:<11} {'running' if ok else 'NOT RUNNING'} (pid {box.pids[name]})")
    with contextlib.suppress(OSError, ValueError):
        print(f"weights     {box.weights()}")
    return 0 if all(box.running().values()) else 1


def cmd_knob(args: argparse.Namespace) -> int:
    box = Sandbox.load(args.run_dir) or Sandbox(args.run_dir)
    values: dict[str, float] = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise SandboxError(f"write knobs as name=value, e.g. error_rate=0.05 (got {item!r})")
        try:
            values[key] = float(value)
        except ValueError:
            raise SandboxError(f"{key}: {value!r} is not a number") from None
    try:
        print(json.dumps(box.knobs(args.role, **values)))
    except OSError as exc:
        raise SandboxError(f"cannot reach the {args.role} service ({exc}); is the sandbox up?") \
            from None
    return 0


def cmd_reap(args: argparse.Namespace) -> int:
    """Wait for the owner process to go, then stop the sandbox (see `Sandbox.up`)."""
    state = Path(args.run_dir) / "sandbox.json"
    while _alive(args.owner) and state.exists():
        time.sleep(0.5)
    box = Sandbox.load(args.run_dir)
    if box is not None:
        box.down()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the relconsole sandbox")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Prometheus, HAProxy, the service and the load")
    up.add_argument("--rate", type=float, default=40.0, help="load in requests per second")
    up.add_argument("--lazy-errors", action="store_true",
                    help="the services create their 5xx series at the first error, as real "
                         "client libraries do (by default they pre-create it at 0)")
    sub.add_parser("down", help="stop everything")
    sub.add_parser("status", help="what runs")
    knob = sub.add_parser("knob", help="change a version's error rate or added latency")
    knob.add_argument("role", choices=("stable", "canary"))
    knob.add_argument("settings", nargs="+", help="error_rate=0.05 latency_ms=200")
    reap = sub.add_parser("reap", help=argparse.SUPPRESS)
    reap.add_argument("--owner", type=int, required=True)
    args = parser.parse_args(argv)
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "knob": cmd_knob,
                "reap": cmd_reap}
    try:
        return commands[args.command](args)
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
