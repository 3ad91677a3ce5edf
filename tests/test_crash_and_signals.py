"""Real processes killed at the worst moment: the release must stay where it stands."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


def fast_config(tmp_path: Path, scenario: str = "healthy") -> Path:
    """The example release on the simulator, with bakes short enough to run in seconds."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["release"]["poll_interval"] = "200ms"
    data["release"]["steps"] = [
        {"weight": 1, "bake": "1s"},
        {"weight": 10, "bake": "3s"},
        {"weight": 50, "bake": "1s"},
        {"weight": 100},
    ]
    data["providers"]["metrics"]["scenario"] = scenario
    # A busy service: the error gate is judged on counts, and at 1 % of the default
    # 400 req/s showing it healthy takes minutes, not the seconds these runs have.
    data["providers"]["metrics"]["request_rate"] = 100_000
    path = tmp_path / "relconsole.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start(cfg: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(cfg), "--headless", "--json",
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
    )


def read_until(proc: subprocess.Popen[str], predicate, timeout: float = 30) -> list[dict]:
    assert proc.stdout is not None
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        events.append(json.loads(line))
        if predicate(events[-1]):
            return events
    raise AssertionError(f"never saw the event; got {[e['event'] for e in events]}")


def journal(state: Path) -> list[dict]:
    path = next((state / "journal").glob("*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def verified_weights(records: list[dict]) -> list[int]:
    return [
        r["after"]["weight"] for r in records
        if r["intent"] in ("advance", "promote") and str(r.get("outcome")).startswith("verified")
    ]


def test_kill_9_mid_step_then_restart_neither_reapplies_nor_skips_a_step(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    first = start(cfg, state)
    read_until(first, lambda e: e["event"] == "step" and e["weight"] == 10)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert verified_weights(journal(state)) == [1, 10]

    second = start(cfg, state)
    events = read_until(second, lambda e: e["event"] == "attach")
    assert "PROGRESSING at 10%" in events[-1]["message"]
    second.communicate(timeout=60)
    assert second.returncode == 0
    records = journal(state)
    # Every step exactly once, in order, across the crash.
    assert verified_weights(records) == [1, 10, 50, 100]
    assert subprocess.run(
        [sys.executable, "-m", "relconsole", "journal", "-c", str(cfg), "--verify"],
        cwd=ROOT, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
        capture_output=True,
    ).returncode == 0


def test_sigint_in_headless_leaves_the_release_paused_where_it_stands(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    proc = start(cfg, state)
    read_until(proc, lambda e: e["event"] == "step" and e["weight"] == 10)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "left paused where it stands" in out + err
    last = journal(state)[-1]
    assert last["intent"] == "pause" and last["after"]["phase"] == "paused"
    assert last["after"]["weight"] == 10
    status = subprocess.run(
        [sys.executable, "-m", "relconsole", "status", "-c", str(cfg), "--json"],
        cwd=ROOT, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
        capture_output=True, text=True,
    )
    snap = json.loads(status.stdout)
    assert snap["weight"] == 10 and snap["phase"] == "paused"


def test_sigterm_in_headless_is_treated_like_sigint(tmp_path):
    cfg, state = fast_config(tmp_path), tmp_path / "state"
    proc = start(cfg, state)
    read_until(proc, lambda e: e["event"] == "step" and e["weight"] == 1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert journal(state)[-1]["after"]["weight"] == 1


# ------------------------------------------------------------------ kill -9 mid-rollback
#
# The command traffic provider drives "the team's deploy tool": two small scripts in
# tmp_path, `set WEIGHT` and `status`. Metrics come from a Prometheus API on loopback
# (sim metrics cannot be used: they only see the sim traffic provider's weight) that
# reports a bad canary, so the headless run trips its gate and rolls back on its own.
# A marker file makes `set 0` hang, so the run is stuck mid-rollback when it is killed.

DEPLOY_SET = """\
import os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
weight = sys.argv[1]
with open(os.path.join(here, "set.calls"), "a") as log:
    log.write(f"{os.getpid()} {weight}\\n")
hang = os.path.join(here, "hang")
mode = open(hang).read().strip() if os.path.exists(hang) else ""
if weight == "0" and mode:
    if mode == "after":  # the change lands, then the tool waits for the rollout forever
        with open(os.path.join(here, "weight.tmp"), "w") as f:
            f.write(weight)
        os.replace(os.path.join(here, "weight.tmp"), os.path.join(here, "weight"))
    with open(os.path.join(here, "hung.pid"), "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(60)
with open(os.path.join(here, "weight.tmp"), "w") as f:
    f.write(weight)
os.replace(os.path.join(here, "weight.tmp"), os.path.join(here, "weight"))
print("weight set to", weight)
"""

DEPLOY_STATUS = """\
import json, os
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "weight")
weight = int(open(path).read()) if os.path.exists(path) else 0
print(json.dumps({"canary_weight": weight}))
"""


class BadCanaryPrometheus:
    """A Prometheus API on loopback: the canary (2.3.0) errs at 5%, the baseline at 0.2%,
    as ratios for a rate() query and as growing counters for a raw selector."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        born = time.time() - 600  # the service has run for ten minutes

        def value(query: str, at: float) -> str:
            ratio = 0.05 if 'version="2.3.0"' in query else 0.002
            if "rate(" in query:
                return str(ratio)
            # A raw counter selector (the error gate is judged on counts): each version
            # serves 100 requests a second, this share of them 5xx.
            requests = 100.0 * max(0.0, at - born)
            return str(requests * ratio if 'code=~"5.."' in query else requests)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                return None

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                now = time.time()
                if url.path.endswith("/query_range"):
                    start, end = float(q["start"]), float(q["end"])
                    step = max(float(q.get("step", "1")), 1.0)
                    points = [[start + i * step, value(q["query"], start + i * step)]
                              for i in range(int((end - start) / step) + 1)]
                    data = {"resultType": "matrix",
                            "result": [{"metric": {}, "values": points}]}
                else:
                    at = float(q.get("time", now))
                    data = {"resultType": "vector",
                            "result": [{"metric": {}, "value": [at, value(q["query"], at)]}]}
                body = json.dumps({"status": "success", "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def command_config(tmp_path: Path, prometheus_url: str) -> Path:
    """A release whose traffic is moved by the scripts above and judged by Prometheus."""
    (tmp_path / "deploy_set.py").write_text(DEPLOY_SET)
    (tmp_path / "deploy_status.py").write_text(DEPLOY_STATUS)
    data = {
        "release": {
            "service": "checkout-api", "version": "2.3.0", "environment": "staging",
            "steps": [{"weight": 10, "bake": "1m"}, {"weight": 100}],
            "poll_interval": "200ms",
            # Long enough that the hung `set 0` is still running when it is killed.
            "call_timeout": "60s",
        },
        "providers": {
            "metrics": {"type": "prometheus", "url": prometheus_url},
            "traffic": {
                "type": "command",
                "set_weight": [sys.executable, str(tmp_path / "deploy_set.py"), "{weight}"],
                "status": [sys.executable, str(tmp_path / "deploy_status.py")],
            },
        },
        "versions": {"canary": "2.3.0", "baseline": "2.2.1"},
        "metrics": {"error_rate": {
            "query": 'sum(rate(http_requests_total{version="{{version}}",code=~"5.."}[1m]))'
                     ' / sum(rate(http_requests_total{version="{{version}}"}[1m]))',
            "unit": "ratio",
        }},
        "gates": [{"metric": "error_rate", "max": 0.01, "failure_limit": 2}],
    }
    path = tmp_path / "relconsole.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start_group(cfg: Path, state: Path) -> subprocess.Popen[str]:
    """Like `start`, in a process group of its own so it can be killed with its children."""
    return subprocess.Popen(
        [sys.executable, "-m", "relconsole", "run", "-c", str(cfg), "--headless", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)}, start_new_session=True,
    )


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def journal_or_empty(state: Path) -> list[dict]:
    paths = list((state / "journal").glob("*.jsonl")) if (state / "journal").exists() else []
    if not paths:
        return []
    return [json.loads(line) for line in paths[0].read_text().splitlines()
            if line.endswith("}")]


def open_rollback(records: list[dict]) -> dict | None:
    """The last rollback intent, when nothing was recorded after it."""
    if records and records[-1]["intent"] == "rollback" and not records[-1].get("outcome"):
        return records[-1]
    return None


def set_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "set.calls"
    return [line.split()[1] for line in log.read_text().splitlines()] if log.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def kill_mid_rollback(tmp_path: Path, cfg: Path, state: Path, hang: str) -> dict:
    """Run headless until it is stuck in `set 0`, then kill -9 it and its process group.

    Returns what was seen: the open rollback record and the pid of the hung hook.
    """
    (tmp_path / "hang").write_text(hang)
    proc = start_group(cfg, state)
    try:
        intent = wait_for(lambda: open_rollback(journal_or_empty(state)), 60,
                          "the rollback intent")
        hung = int(wait_for(lambda: (tmp_path / "hung.pid").exists()
                            and (tmp_path / "hung.pid").read_text(), 30, "the hung set hook"))
        time.sleep(0.3)  # it stays stuck: no outcome appears
        assert open_rollback(journal_or_empty(state)) is not None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return {"intent": intent, "hung_pid": hung}


def restart(cfg: Path, state: Path) -> tuple[int, list[dict], str, float]:
    started = time.monotonic()
    proc = start_group(cfg, state)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    took = time.monotonic() - started
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, events, err, took


def verify_journal(cfg: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relconsole", "journal", "-c", str(cfg), "--verify"],
        cwd=ROOT, env={**os.environ, "RELCONSOLE_STATE_DIR": str(state)},
        capture_output=True, text=True,
    )


@pytest.fixture
def prometheus():
    prom = BadCanaryPrometheus()
    yield prom
    prom.close()


@pytest.fixture
def reap(tmp_path: Path):
    """Kill whatever deploy hook a killed console left behind, whatever the test did."""
    yield
    pidfile = tmp_path / "hung.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)


def test_kill_9_mid_rollback_then_restart_completes_and_verifies_the_rollback(
    tmp_path, prometheus, reap
):
    cfg, state = command_config(tmp_path, prometheus.url), tmp_path / "state"
    seen = kill_mid_rollback(tmp_path, cfg, state, hang="before")
    assert (tmp_path / "weight").read_text() == "10"  # the rollback never landed
    assert seen["intent"]["after"] == {"weight": 0}
    assert "gate error_rate failed" in seen["intent"]["reason"]
    # KNOWN GAP (reported, not fixed): the hook runs in a session of its own (so a timeout
    # can kill its helpers), so a kill -9 of the console does not take it down: it is
    # still there, hung, and a restart would run a second `set 0` beside it. Here the
    # operator (or systemd's cgroup kill) stops it before the restart.
    print(f"hung hook still alive after kill -9 of the console: {alive(seen['hung_pid'])}")
    os.killpg(seen["hung_pid"], signal.SIGKILL)
    (tmp_path / "hang").unlink()
    calls_before = len(set_calls(tmp_path))

    code, events, err, took = restart(cfg, state)
    assert code == 3, err  # docs/design.md: 3 rolled back
    attach = next(e for e in events if e["event"] == "attach")
    assert "ROLLING BACK at 10%" in attach["message"]
    assert any(e["event"] == "rolled_back" and "verified" in e["message"] for e in events)
    assert (tmp_path / "weight").read_text() == "0"
    assert set_calls(tmp_path)[calls_before:] == ["0"]  # applied exactly once more
    records = journal(state)
    after_kill = records[records.index(seen["intent"]) + 1:]
    done = [r for r in after_kill if r["intent"].startswith("rollback")
            and str(r.get("outcome", "")).startswith("verified")]
    assert len(done) == 1 and done[0]["after"]["weight"] == 0
    assert done[0]["reason"] == seen["intent"]["reason"]  # the same rollback, finished
    assert verify_journal(cfg, state).returncode == 0
    print(f"restart to verified rollback: {took:.2f}s")


def test_kill_9_after_the_rollback_landed_restart_finds_it_done_and_reapplies_nothing(
    tmp_path, prometheus, reap
):
    cfg, state = command_config(tmp_path, prometheus.url), tmp_path / "state"
    # `set 0` changes the weight, then hangs waiting for a rollout: killed before it
    # returns, so the journal has the intent and no outcome, but the weight is 0.
    seen = kill_mid_rollback(tmp_path, cfg, state, hang="after")
    assert (tmp_path / "weight").read_text() == "0"
    os.killpg(seen["hung_pid"], signal.SIGKILL)
    (tmp_path / "hang").unlink()
    calls_before = len(set_calls(tmp_path))

    code, events, err, took = restart(cfg, state)
    assert code == 3, err
    assert set_calls(tmp_path)[calls_before:] == []  # nothing re-applied
    attach = next(e for e in events if e["event"] == "attach")
    assert "ROLLED BACK at 0%" in attach["message"]
    records = journal(state)
    after_kill = records[records.index(seen["intent"]) + 1:]
    found = [r for r in after_kill if r["intent"] == "rollback"]
    assert len(found) == 1
    assert found[0]["outcome"] == "verified (found already done on restart)"
    assert found[0]["reason"] == seen["intent"]["reason"]
    assert not any(r["intent"] == "rollback.retry" for r in after_kill)
    assert verify_journal(cfg, state).returncode == 0
    print(f"restart to found-already-done: {took:.2f}s")


def test_kill_9_mid_journal_write_restart_repairs_the_torn_line_with_a_warning(
    tmp_path, prometheus, reap
):
    cfg, state = command_config(tmp_path, prometheus.url), tmp_path / "state"
    seen = kill_mid_rollback(tmp_path, cfg, state, hang="before")
    os.killpg(seen["hung_pid"], signal.SIGKILL)
    (tmp_path / "hang").unlink()
    # Make the crash land inside the write of the rollback intent: its line is cut in
    # half, and the head file (updated after each record) still names the one before.
    path = next((state / "journal").glob("*.jsonl"))
    lines = path.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[-1])["intent"] == "rollback"
    kept = b"".join(lines[:-1])
    path.write_bytes(kept + lines[-1][: len(lines[-1]) // 2])
    head = path.with_name(path.name[: -len(".jsonl")] + ".head")
    head.write_text(json.dumps({"seq": json.loads(lines[-2])["seq"],
                                "sha256": hashlib.sha256(lines[-2].rstrip(b"\n")).hexdigest()}))
    assert verify_journal(cfg, state).returncode != 0  # the torn line is noticed

    code, _events, err, took = restart(cfg, state)
    # The intent was lost with the torn line, so nothing says "roll back"; the weight is
    # still 10 and the canary still bad, so the restarted run rolls back on its own.
    assert code == 3, err
    assert "incomplete" in err and "journal" in err.lower(), err
    assert path.read_bytes().startswith(kept)  # everything before it untouched
    assert list(path.parent.glob("*.broken-*")), "the torn bytes are kept aside"
    result = verify_journal(cfg, state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "weight").read_text() == "0"
    print(f"restart with repair to rolled back: {took:.2f}s")
