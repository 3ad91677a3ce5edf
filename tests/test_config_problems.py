"""`relconsole check` and `load_config(collect=True)` report every problem of a file at once.

Every other command still stops at the first problem; these tests also pin that, and
that the modules providers use (secrets, durations) need neither pydantic nor YAML.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from relconsole.config import ConfigError, ConfigProblems, load_config
from relconsole.suggest import closest, did_you_mean

ROOT = Path(__file__).resolve().parent.parent

# Three independent mistakes: a schema problem (line 5), a misspelt adapter type
# (line 10) and a rule between fields (line 15). Each needs its own fix.
THREE_MISTAKES = """\
release:
  service: api
  version: 1.0.0
  environment: staging
  stratgy: canary
  steps:
    - {weight: 10, bake: 1m}
    - {weight: 100}
providers:
  traffic: {type: haprxy}
  metrics: {type: sim}
metrics:
  error_rate: {query: x}
gates:
  - {metric: eror_rate, max: 0.01}
"""


def write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def collected(path: Path, **kwargs: Any) -> list[ConfigError]:
    with pytest.raises(ConfigProblems) as info:
        load_config(path, collect=True, **kwargs)
    return info.value.problems


def check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relconsole", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


# --------------------------------------------------------------------------- the command


def test_check_lists_three_independent_mistakes_on_their_lines(tmp_path: Path) -> None:
    result = check(write(tmp_path, THREE_MISTAKES))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # nothing is reported ok, and no provider is reached
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("relconsole: ") and "bad.yaml:5: release.stratgy:" in lines[0]
    assert "Did you mean 'strategy'?" in lines[0]
    assert "bad.yaml:10: providers.traffic.type:" in lines[1]
    assert "unknown traffic provider type 'haprxy'" in lines[1]
    assert "Did you mean 'haproxy'?" in lines[1]
    assert "bad.yaml:15: gates[0].metric:" in lines[2]
    assert "Did you mean 'error_rate'?" in lines[2]


def test_check_of_one_mistake_is_still_one_line(tmp_path: Path) -> None:
    text = THREE_MISTAKES.replace("stratgy", "strategy").replace("haprxy", "sim")
    result = check(write(tmp_path, text))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"relconsole: {tmp_path / 'bad.yaml'}:15: gates[0].metric: gate names unknown metric "
        "'eror_rate'. Did you mean 'error_rate'? Known metrics: error_rate."
    ]


def test_other_commands_still_stop_at_the_first_problem(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "relconsole", "status", "-c", str(write(tmp_path, THREE_MISTAKES))],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.yaml:5: release.stratgy:" in lines[0]


# --------------------------------------------------------------------------- collect=True


def test_every_schema_error_is_reported_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps:
            - {weight: 10, bake: 1m}
            - {weight: 100}
          auto_advance: maybe
          poll_interval: -5s
        providers:
          traffic: {type: sim}
          metrics: {type: sim}
        gates:
          - {metric: error_rate, max: lots}
        ui: dark
        """,
    )
    problems = collected(path)
    assert [(p.line, p.key) for p in problems] == [
        (8, "release.auto_advance"),
        (9, "release.poll_interval"),
        (14, "gates[0].max"),
        (15, "ui"),
    ]
    # Without collect=True: one ConfigError, the first by line, exactly as before.
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert not isinstance(info.value, ConfigProblems)
    assert str(info.value) == str(problems[0])


def test_rules_still_run_on_the_parts_that_are_valid(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          strategy: canery
          steps:
            - {weight: 50}
            - {weight: 10}
        providers:
          traffic: {type: sim}
        flags_audit:
          lifetime_days: {relase: 3}
          naming: '(['
        """,
    )
    problems = collected(path)
    assert [(p.line, p.key) for p in problems] == [
        (5, "release.strategy"),
        (8, "release.steps[1].weight"),  # weights must increase
        (8, "release.steps[1].weight"),  # and the last one must be 100
        (12, "flags_audit.lifetime_days.relase"),
        (13, "flags_audit.naming"),
    ]
    assert "Did you mean 'canary'?" in problems[0].hint
    assert "weights must increase" in problems[1].problem
    assert "100%" in problems[2].problem


def test_an_invalid_gate_is_not_also_blamed_for_what_its_typo_hides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim}
          metrics: {type: sim}
        metrics: {error_rate: {}}
        gates:
          - {metric: error_rate, maximum: 0.01}
        """,
    )
    problems = collected(path)
    assert [p.key for p in problems] == ["gates[0].maximum"]  # not also "has no threshold"


def test_duplicate_keys_and_schema_errors_are_reported_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        release:
          service: api
          service: api2
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim, seed: 1}
          trafic: {type: sim}
        """,
    )
    problems = collected(path)
    assert [(p.line, p.key) for p in problems] == [
        (3, "release.service"),
        (7, "release.steps"),
        (10, "providers.trafic"),
    ]
    assert "duplicate key 'service' (first at line 2)" in problems[0].problem


def test_a_yaml_syntax_error_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "release:\n  service: [api\nproviders: {traffic: {type: sim}}\n")
    problems = collected(path)
    assert len(problems) == 1 and problems[0].problem.startswith("invalid YAML")


def test_every_secret_problem_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELC_T_MISSING_ONE", raising=False)
    monkeypatch.delenv("RELC_T_MISSING_TWO", raising=False)
    path = write(
        tmp_path,
        """\
        release:
          service: api
          version: 1.0.0
          environment: staging
          steps: [{weight: 100}]
        providers:
          traffic: {type: sim, token: 'env:RELC_T_MISSING_ONE'}
          metrics:
            type: sim
            token: 'env:RELC_T_MISSING_TWO'
            other: 'vault:secret/x'
        """,
    )
    problems = collected(path)
    assert [(p.line, p.key) for p in problems] == [
        (7, "providers.traffic.token"),
        (10, "providers.metrics.token"),
        (11, "providers.metrics.other"),
    ]
    assert "RELC_T_MISSING_ONE is not set" in problems[0].problem
    # Without collect=True, the first one the walk meets (metrics before traffic) stops
    # the load, so no more secrets are looked up than before.
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert not isinstance(info.value, ConfigProblems)
    assert info.value.line == 10


def test_provider_types_are_checked_only_when_asked(tmp_path: Path) -> None:
    text = THREE_MISTAKES.replace("stratgy", "strategy").replace("eror_rate", "error_rate")
    path = write(tmp_path, text)
    assert load_config(path, collect=True).providers["traffic"] == {"type": "haprxy"}
    problems = collected(path, provider_types={"traffic": ["haproxy", "sim"], "flags": []})
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "providers.traffic.type: unknown traffic provider type 'haprxy'. "
        "Did you mean 'haproxy'? Known traffic providers: haproxy, sim."
    ]


def test_config_problems_reads_as_its_first_problem_and_pickles(tmp_path: Path) -> None:
    first = ConfigError(tmp_path / "a.yaml", 9, "gates", "second by line", "Fix it")
    second = ConfigError(tmp_path / "a.yaml", 2, "release", "first by line", "")
    found = ConfigProblems([first, second])
    assert isinstance(found, ConfigError)
    assert [str(p) for p in found.problems] == [str(second), str(first)]
    assert str(found) == str(second) and found.line == 2
    again = pickle.loads(pickle.dumps(found))
    assert [str(p) for p in again.problems] == [str(p) for p in found.problems]
    with pytest.raises(ValueError):
        ConfigProblems([])


# --------------------------------------------------------------------------- helpers


def test_did_you_mean_phrasings() -> None:
    assert did_you_mean("stratgy", ["service", "strategy"]) == "Did you mean 'strategy'?"
    assert did_you_mean("url", ["token"]) == ""
    assert did_you_mean("tokn", ["url", "token"], inline=True) == " (did you mean 'token'?)"
    assert closest("envoy", ["env", "keyring"], cutoff=0.8) is None
    assert closest("Env".lower(), ["env", "keyring"], cutoff=0.8) == "env"


def test_providers_secrets_and_durations_need_no_pydantic_yaml_or_config() -> None:
    modules = [
        "relconsole.secrets",
        "relconsole.durations",
        "relconsole.suggest",
        *(
            f"relconsole.providers.{p.stem}"
            for p in sorted((ROOT / "relconsole" / "providers").glob("*.py"))
            if p.stem != "__init__"
        ),
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in ('pydantic', 'yaml', 'relconsole.config') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
