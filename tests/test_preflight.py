"""`relconsole check --preflight`: one ✓/✗ line per check, exit 0 only when all pass.

A release that is ready passes every check; then each check is made to fail on its own
(a dependency on a closed port, a canary server down, a missing flag, a baseline over
its own gate) and must be the one ✗, with the reason and what to do, and a non-zero
exit. Dependencies are probed over real HTTP on loopback; servers come from the
simulator, or from the command provider's status hook where a server must be down.
"""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relconsole.cli import main
from relconsole.exit_codes import ExitCode
from tests.plan_servers import Answers, serve


@pytest.fixture
def server() -> Iterator[Answers]:
    with serve() as answers:
        yield answers


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


READY = """\
release:
  service: checkout-api
  version: 2.3.0
  environment: production
  call_timeout: 3s
  steps: [{{weight: 5, bake: 1m}}, {{weight: 100}}]
  flags: [{flags}]
  changes:
    dependencies:
      - {{name: pricing-api, http: '{health}', version: 4.1.0}}
providers:
  metrics: {{type: sim, scenario: healthy}}
  traffic: {traffic}
  flags: {{type: sim}}
versions: {{canary: 2.3.0, baseline: 2.2.1}}
metrics:
  error_rate: {{unit: ratio}}
gates:
  - {{metric: error_rate, max: {limit}, max_increase: 0.005}}
"""


def config(tmp_path: Path, server: Answers, **changes: str) -> Path:
    values = {"flags": "checkout-new-pricing-release, checkout-pricing-killswitch",
              "health": f"{server.url}/healthz", "traffic": "{type: sim}", "limit": "0.01"}
    values.update(changes)
    path = tmp_path / "release.yaml"
    path.write_text(READY.format(**values))
    return path


def preflight(tmp_path: Path, path: Path,
              capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str], str]:
    code = main(["check", "--preflight", "-c", str(path), "--state-dir", str(tmp_path / "s")])
    out, err = capsys.readouterr()
    lines = {}
    for line in out.splitlines():
        if line[:2] in ("✓ ", "✗ "):
            name = line[2:].split(":")[0]
            lines[name] = line
    return code, lines, out + err


PREFLIGHT = ["baseline healthy", "canary up", "flags exist", "dependency pricing-api",
             "capacity", "window"]


def failing(lines: dict[str, str]) -> list[str]:
    return [name for name, line in lines.items() if line.startswith("✗")]


def test_a_ready_release_passes_every_check_and_exits_0(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, out = preflight(tmp_path, config(tmp_path, server), capsys)
    assert code == ExitCode.OK, out
    assert [n for n in lines if n in PREFLIGHT] == PREFLIGHT  # in the checklist's order
    assert failing(lines) == [], out
    assert lines["baseline healthy"].startswith("✓ baseline healthy: 2.2.1: error_rate ")
    assert "(≤1 %)" in lines["baseline healthy"]
    assert lines["canary up"] == "✓ canary up: 2.3.0: canary 2/2 up (needs all of them)"
    assert lines["dependency pricing-api"] == (
        f"✓ dependency pricing-api: GET {server.url}/healthz: 200, version 4.1.0")
    assert lines["capacity"].startswith("✓ capacity: stable 2/2 up")
    assert lines["window"] == "✓ window: no deployment window configured"


def test_a_dead_dependency_fails_alone(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/healthz"
    code, lines, out = preflight(tmp_path, config(tmp_path, server, health=dead), capsys)
    assert code == ExitCode.ERROR
    assert failing(lines) == ["dependency pricing-api"], out
    assert lines["dependency pricing-api"] == (
        f"✗ dependency pricing-api: GET {dead}: connection refused — deploy pricing-api "
        "4.1.0 (or fix it) before this release: it must already be running")


def test_a_dependency_that_answers_an_error_or_the_wrong_version_fails(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, server)
    server.health = (503, '{"status": "starting"}')
    code, lines, _ = preflight(tmp_path, path, capsys)
    assert code == ExitCode.ERROR
    assert f"GET {server.url}/healthz: 503 (not 2xx)" in lines["dependency pricing-api"]
    server.health = (200, '{"status": "ok", "version": "4.0.9"}')
    code, lines, _ = preflight(tmp_path, path, capsys)
    assert code == ExitCode.ERROR
    assert "does not name version 4.1.0" in lines["dependency pricing-api"]


def test_a_missing_flag_fails_alone(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, server,
                  flags="checkout-new-pricing-release, checkout-tax-rules-release")
    code, lines, out = preflight(tmp_path, path, capsys)
    assert code == ExitCode.ERROR
    assert failing(lines) == ["flags exist"], out
    assert lines["flags exist"] == (
        "✗ flags exist: not in sim: checkout-tax-rules-release — create them in sim, or "
        "take them out of release.flags")


def test_a_baseline_over_its_own_limit_fails_alone(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    # The simulated stable version errs at about 0.2 %: over a 0.1 % limit.
    code, lines, out = preflight(tmp_path, config(tmp_path, server, limit="0.001"), capsys)
    assert code == ExitCode.ERROR
    assert failing(lines) == ["baseline healthy"], out
    line = lines["baseline healthy"]
    assert line.startswith("✗ baseline healthy: error_rate of the baseline 0.")
    assert "is above its limit 0.1 %" in line
    assert "the stable version 2.2.1 must hold its own gates" in line


def status_hook(tmp_path: Path, servers: list[dict[str, Any]] | None) -> str:
    """The command provider's two hooks: set_weight does nothing, status prints them."""
    script = tmp_path / "status.py"
    doc: dict[str, Any] = {"canary_weight": 0}
    if servers is not None:
        doc["servers"] = servers
    script.write_text(f"import json\nprint(json.dumps({doc!r}))\n")
    py = json.dumps(sys.executable)
    return textwrap.dedent(f"""\
        {{type: command, set_weight: [{py}, -c, 'pass'], status: [{py}, '{script}'],
                   timeout: 2s}}""")


def test_a_canary_server_down_fails_alone(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic = status_hook(tmp_path, [
        {"name": "canary-1", "role": "canary", "up": True},
        {"name": "canary-2", "role": "canary", "up": False, "detail": "CrashLoopBackOff"},
        {"name": "stable-1", "role": "stable", "up": True},
    ])
    code, lines, out = preflight(tmp_path, config(tmp_path, server, traffic=traffic), capsys)
    assert code == ExitCode.ERROR
    assert failing(lines) == ["canary up"], out
    assert lines["canary up"] == (
        "✗ canary up: 2.3.0: canary 1/2 up (needs all of them); down: canary-2 "
        "(CrashLoopBackOff) — deploy 2.3.0 and bring its instances up before the first step")


def test_a_stable_server_down_is_too_little_capacity(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic = status_hook(tmp_path, [
        {"name": "canary-1", "role": "canary", "up": True},
        {"name": "stable-1", "role": "stable", "up": True},
        {"name": "stable-2", "role": "stable", "up": False, "detail": "L4CON"},
    ])
    code, lines, out = preflight(tmp_path, config(tmp_path, server, traffic=traffic), capsys)
    assert code == ExitCode.ERROR
    assert failing(lines) == ["capacity"], out
    assert lines["capacity"].startswith("✗ capacity: stable 1/2 up; down: stable-2 (L4CON) — ")


def test_a_provider_that_reports_no_servers_cannot_tell_and_does_not_pass(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic = status_hook(tmp_path, None)
    code, lines, out = preflight(tmp_path, config(tmp_path, server, traffic=traffic), capsys)
    assert code == ExitCode.ERROR
    assert failing(lines) == ["canary up", "capacity"], out
    assert lines["canary up"].startswith("✗ canary up: cannot tell: command reports no canary "
                                         "servers — ")
    assert lines["capacity"].startswith("✗ capacity: cannot tell: command reports no stable "
                                        "servers — ")


PROMQL = """\
release:
  service: checkout-api
  version: 2.3.0
  environment: production
  call_timeout: 3s
  steps: [{{weight: 5, bake: 1m}}, {{weight: 100}}]
  changes:
    dependencies:
      - {{name: inventory, promql: 'sum(up{{job="inventory",version="{{{{version}}}}"}})',
         version: 3.2.0}}
providers:
  metrics: {{type: prometheus, url: '{url}'}}
  traffic: {{type: sim}}
"""


def test_a_promql_probe_passes_on_non_zero_and_fails_on_zero_or_nothing(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(PROMQL.format(url=server.url))
    server.promql = lambda query: "2"
    code, lines, out = preflight(tmp_path, path, capsys)
    assert code == ExitCode.OK, out
    sent = 'sum(up{job="inventory",version="3.2.0"})'
    assert set(server.queries) == {sent}  # (a dropped connection is retried once)
    assert lines["dependency inventory"] == f"✓ dependency inventory: PromQL {sent} = 2"
    for answer, says in (("0", f"PromQL {sent} = 0"), ("", "no data")):
        server.promql = lambda query, answer=answer: answer  # type: ignore[misc]
        code, lines, out = preflight(tmp_path, path, capsys)
        assert code == ExitCode.ERROR
        assert failing(lines) == ["dependency inventory"], out
        assert says in lines["dependency inventory"]


def test_check_without_preflight_runs_none_of_it(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/healthz"
    path = config(tmp_path, server, health=dead)
    code = main(["check", "-c", str(path), "--state-dir", str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert "dependency" not in out and "window" not in out


def test_a_closed_window_fails_alone(
    tmp_path: Path, server: Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, server)
    # A window that is never open now: one minute, on a day of the week that is not today.
    import datetime as dt

    other = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[
        (dt.datetime.now(dt.UTC).weekday() + 3) % 7]
    path.write_text(path.read_text().replace(
        "  call_timeout: 3s\n",
        f"  call_timeout: 3s\n  windows: [{{days: {other}, from: '03:00', to: '03:01'}}]\n"))
    code, lines, out = preflight(tmp_path, path, capsys)
    assert code == ExitCode.ERROR
    assert failing(lines) == ["window"], out
    assert lines["window"].startswith(
        f"✗ window: outside the deployment windows ({other.title()} 03:00–03:01 UTC); the "
        "next opens ")
