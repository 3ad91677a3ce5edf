"""The sandbox's parts without starting anything: the checked-in config is the launcher's
own rendering, it builds real providers, and the service counts and fails as it says.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from relconsole.assembly import build_providers
from relconsole.clock import FastClock
from relconsole.config import load_config
from relconsole.providers.haproxy import HAProxyTraffic
from relconsole.providers.prometheus import PrometheusMetrics
from tests.sandbox_stack import ROOT, launcher

sys.path.insert(0, str(ROOT / "examples" / "sandbox"))
import service

CONFIG = ROOT / "examples" / "sandbox" / "relconsole.yaml"


def test_the_checked_in_config_is_what_the_launcher_writes() -> None:
    assert CONFIG.read_text() == launcher.relconsole_config(), (
        "examples/sandbox/relconsole.yaml drifted from launcher.relconsole_config(); "
        "regenerate it")


def test_the_sandbox_config_builds_prometheus_and_haproxy(tmp_path: Path) -> None:
    cfg = load_config(CONFIG)
    built = build_providers(cfg, FastClock(), state=tmp_path)
    assert isinstance(built.metrics, PrometheusMetrics)
    assert isinstance(built.traffic, HAProxyTraffic)
    assert built.traffic.settings.address == ("127.0.0.1", 18099)
    assert cfg.state_dir == CONFIG.parent / ".run" / "state"


def test_a_socket_config_for_tests(tmp_path: Path) -> None:
    text = launcher.relconsole_config(launcher.Ports(1, 2, 3, 4, 5),
                                      socket_path=tmp_path / "h.sock", window="10s")
    path = tmp_path / "r.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.providers["traffic"]["socket"] == str(tmp_path / "h.sock")
    assert "[10s]" in cfg.plan.metrics[0].query


def test_errors_are_spread_exactly_at_the_rate() -> None:
    state = service.State("1.1.0")
    state.set_knobs({"error_rate": 0.05})
    errors = [state.next_is_error() for _ in range(200)]
    assert sum(errors) == 10
    assert errors.index(True) == 19  # one in twenty, evenly, not by luck


def test_exposition_has_the_error_series_from_the_start() -> None:
    state = service.State("1.0.0")
    text = state.exposition()
    assert 'http_requests_total{version="1.0.0",code="500"} 0' in text
    state.observe("200", 0.003)
    state.observe("500", 0.2)
    text = state.exposition()
    assert 'http_request_duration_seconds_bucket{version="1.0.0",le="0.005"} 1' in text
    assert 'http_request_duration_seconds_bucket{version="1.0.0",le="0.25"} 2' in text
    assert 'http_request_duration_seconds_bucket{version="1.0.0",le="+Inf"} 2' in text


def test_knobs_are_checked() -> None:
    state = service.State("1.0.0")
    for bad in ({"error_rate": 2}, {"latency_ms": -1}, {"colour": 1}):
        try:
            state.set_knobs(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")


def test_the_load_generator_only_loads_loopback() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sandbox" / "loadgen.py"),
         "--target", "10.1.2.3:80"], capture_output=True, text=True, timeout=20)
    assert done.returncode != 0 and "loopback targets only" in done.stderr
