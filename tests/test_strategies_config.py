"""Every strategy the config accepts does what it says, or `check` refuses it (issue 14).

A strategy a traffic provider cannot do used to run as a plain canary while the operator
believed users were shielded; each such pair is now refused at `check` with exit 2 and
the providers that can. The keys a strategy reads are refused beside any other strategy,
and each strategy's steps have the shape it runs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from relconsole.cli import main
from relconsole.config import ConfigProblems, load_config
from relconsole.model import Route
from relconsole.providers.strategies import STRATEGIES, providers_for

TRAFFIC = {
    "haproxy": '{type: haproxy, address: "127.0.0.1:9", backend: app, stable: s, canary: c}',
    "command": "{type: command, set_weight: [/bin/true], status: [/bin/true]}",
    "argo-rollouts": "{type: argo-rollouts, rollout: checkout}",
    "sim": "{type: sim}",
}
SHAPES = {
    "canary": "  steps: [{weight: 10, bake: 1m}, {weight: 100}]\n",
    "blue-green": "  steps: [{weight: 100, bake: 1m}]\n",
    "ab": ("  cohorts: {beta: {header: X-Group, values: [beta]}}\n"
           "  steps: [{cohort: beta, bake: 1m}, {weight: 100}]\n"),
    "shadow": "  steps: [{mirror: 20, bake: 1m}, {weight: 100}]\n",
    "rolling": "  rolling: {batch: 1, bake: 1m}\n",
}


def config(tmp_path: Path, strategy: str, traffic: str, body: str | None = None) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(
        "release:\n  service: checkout\n  version: 2.3.0\n  environment: staging\n"
        f"  strategy: {strategy}\n" + (SHAPES[strategy] if body is None else body)
        + f"providers:\n  traffic: {traffic}\n"
        + "versions: {baseline: 2.2.0}\n")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigProblems) as info:
        load_config(path, resolve_secrets=False, collect=True)
    return [str(p) for p in info.value.problems]


UNSUPPORTED = [(kind, strategy) for kind in TRAFFIC for strategy in SHAPES
               if strategy not in STRATEGIES[kind]]


def test_some_pairs_are_refused_and_every_strategy_has_a_provider() -> None:
    assert len(UNSUPPORTED) >= 8
    assert all(providers_for(strategy) for strategy in SHAPES)


@pytest.mark.parametrize(("kind", "strategy"), UNSUPPORTED)
def test_check_refuses_a_strategy_the_provider_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, strategy: str
) -> None:
    path = config(tmp_path, strategy, TRAFFIC[kind])
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "cannot do strategy" in line]
    assert len(said) == 1, err
    assert f"release.yaml:5: release.strategy: traffic provider {kind} cannot do strategy " \
           f"{strategy}" in said[0]
    assert "Traffic providers that can: " + ", ".join(providers_for(strategy)) in err
    assert "Traceback" not in err


def test_keys_of_another_strategy_are_refused_not_ignored(tmp_path: Path) -> None:
    body = ("  cohorts: {beta: {header: X-Group, values: [beta]}}\n"
            "  rolling: {batch: 2}\n"
            "  steps: [{weight: 10}, {cohort: beta}, {mirror: 5}, {weight: 100}]\n")
    said = problems(config(tmp_path, "canary", TRAFFIC["haproxy"], body))
    assert any("release.cohorts is only read by strategy ab" in p for p in said)
    assert any("release.rolling is only read by strategy rolling" in p for p in said)
    assert any("release.steps[1].cohort: a cohort step needs strategy ab" in p for p in said)
    assert any("release.steps[2].mirror: a mirror step needs strategy shadow" in p
               for p in said)


@pytest.mark.parametrize(("strategy", "body", "expected"), [
    ("blue-green", "  steps: [{weight: 10}, {weight: 100}]\n",
     "blue-green switches all traffic at once, so it has one step"),
    ("ab", "  cohorts: {beta: {header: X-Group, values: [beta]}}\n"
           "  steps: [{cohort: betta}, {weight: 100}]\n",
     "no cohort named betta in release.cohorts"),
    ("ab", "  cohorts: {beta: {header: X-Group, values: [beta]}}\n"
           "  steps: [{weight: 10}, {cohort: beta}, {weight: 100}]\n",
     "cohort steps come before the weight steps"),
    ("ab", "  cohorts: {beta: {header: X-Group, values: [beta]}}\n"
           "  steps: [{weight: 10}, {weight: 100}]\n",
     "strategy ab, but no step routes a cohort"),
    ("ab", "  cohorts: {beta: {header: X-Group, percent: 10}}\n"
           "  steps: [{cohort: beta}, {weight: 100}]\n",
     "a header cohort takes values:"),
    ("ab", "  cohorts: {beta: {header: X-Group, cookie: b, values: [x]}}\n"
           "  steps: [{cohort: beta}, {weight: 100}]\n",
     "a cohort is picked one way, not by header and cookie"),
    ("shadow", "  steps: [{mirror: 50}, {mirror: 20}, {weight: 100}]\n",
     "mirror shares must increase (20 after 50)"),
    ("shadow", "  steps: [{mirror: 50}]\n",
     "no step sends users to the canary by weight"),
    ("shadow", "  steps: [{mirror: 20, weight: 10}, {weight: 100}]\n",
     "a step has one target, not weight and mirror"),
    ("rolling", "  steps: [{weight: 100}]\n  rolling: {batch: 1}\n",
     "strategy rolling takes no release.steps"),
    ("rolling", "",
     "strategy rolling needs release.rolling"),
    ("rolling", "  rolling: {batch: 0}\n",
     "release.rolling.batch: must be at least 1 server"),
])
def test_each_strategy_has_the_shape_it_runs(
    tmp_path: Path, strategy: str, body: str, expected: str
) -> None:
    kind = "haproxy" if strategy != "shadow" else "command"
    said = problems(config(tmp_path, strategy, TRAFFIC[kind], body))
    assert any(expected in p for p in said), said


def test_rolling_needs_the_old_version_to_roll_back_to(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(textwrap.dedent("""\
        release: {service: a, version: "2", environment: s, strategy: rolling,
                  rolling: {batch: 1}}
        providers: {traffic: {type: command, set_weight: [/bin/true], status: [/bin/true]}}
        """))
    said = problems(path)
    assert any("versions: strategy rolling re-deploys the old version" in p for p in said)


def test_routes_are_cumulative_and_blue_green_bakes_after_the_switch(tmp_path: Path) -> None:
    body = ("  cohorts: {beta: {header: X-Group, values: [beta]},"
            " sticky: {hash: X-User, percent: 10}}\n"
            "  steps: [{cohort: beta, bake: 1m}, {cohort: sticky}, {weight: 10, bake: 2m},"
            " {weight: 100}]\n")
    plan = load_config(config(tmp_path, "ab", TRAFFIC["haproxy"], body),
                       resolve_secrets=False).plan
    assert [(s.weight, s.route, s.label) for s in plan.steps] == [
        (0, Route(cohorts=("beta",)), "cohort beta"),
        (0, Route(cohorts=("beta", "sticky")), "cohort sticky"),
        (10, Route(cohorts=("beta", "sticky")), ""),
        (100, Route(), ""),  # everyone is on the new version: the maps are emptied
    ]
    assert plan.cohort("sticky") is not None
    assert plan.cohort("sticky").describe() == "10% of users by X-User (sticky hash)"  # type: ignore[union-attr]
    green = load_config(config(tmp_path, "blue-green", TRAFFIC["haproxy"]),
                        resolve_secrets=False).plan
    assert [(s.weight, s.bake, s.label) for s in green.steps] == [
        (100, 60.0, "switch"), (100, 0.0, "done")]
    shadow = load_config(config(tmp_path, "shadow", TRAFFIC["command"],
                                "  steps: [{mirror: 20}, {mirror: 100}, {weight: 5},"
                                " {weight: 100}]\n"), resolve_secrets=False).plan
    assert [(s.weight, s.route.mirror) for s in shadow.steps] == [
        (0, 20), (0, 100), (5, 100), (100, 0)]


def test_rolling_steps_are_the_batches() -> None:
    from relconsole.config.load import rolling_steps

    four = rolling_steps([1, 1, 1, 1], 30.0)
    assert [(s.weight, s.route.batches, s.label, s.bake) for s in four] == [
        (25, 1, "batch 1", 30.0), (50, 2, "batch 2", 30.0), (75, 3, "batch 3", 30.0),
        (100, 4, "batch 4", 30.0)]
    uneven = rolling_steps([2, 2, 1], 0.0)  # the provider's groups: the last one short
    assert [(s.weight, s.route.batches) for s in uneven] == [(40, 1), (80, 2), (100, 3)]


def test_the_readme_strategy_table_is_what_the_providers_do() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("<!-- strategy-table:")[1].split("<!-- /strategy-table -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    header = next(line for line in table.splitlines() if line.startswith("| strategy"))
    providers = [c.strip(" `") for c in header.strip("|").split("|")[1:]]
    assert providers == list(STRATEGIES)
    shown = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        shown[cells[0].strip("`")] = dict(zip(providers, cells[1:], strict=True))
    assert set(shown) == set(SHAPES)
    for strategy, cells in shown.items():
        for provider, text in cells.items():
            assert text == STRATEGIES[provider].get(strategy, "refused at `check`"), (
                strategy, provider)


def test_the_plan_says_what_each_strategy_step_does(tmp_path: Path) -> None:
    from relconsole.plan import LiveFacts, build_plan, render_markdown

    body = ("  cohorts: {beta: {header: X-Group, values: [beta]}}\n"
            "  steps: [{cohort: beta, bake: 10m}, {weight: 10, bake: 5m}, {weight: 100}]\n")
    ab = load_config(config(tmp_path, "ab", TRAFFIC["haproxy"], body), resolve_secrets=False)
    text = render_markdown(build_plan(ab, LiveFacts(), 0.0))
    assert "Step 1: cohort beta (header X-Group = beta) to the canary, whatever the weight" \
           in text
    assert "Step 2: canary at 10 % (and cohort beta), bake 5m" in text
    assert "take the cohorts out of the routing, weight 0" in text
    green = load_config(config(tmp_path, "blue-green", TRAFFIC["haproxy"]),
                        resolve_secrets=False)
    text = render_markdown(build_plan(green, LiveFacts(), 0.0))
    assert "Step 1: switch: all traffic to green, blue drains" in text
    assert "Switch all traffic back to blue through haproxy" in text
