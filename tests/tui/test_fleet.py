"""The fleet screen (`relconsole fleet`): every key, live updates, attaching and coming back.

Rows are put into the screen's feed directly (the sources are tested against FAKE API
servers in tests/test_fleet_argo.py) or read from a real folder of configs, journals and
leases. Time is fixed, so ages and "3m ago" are stable in the snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rig import Rig, healthy_mid_release

from relconsole import cli
from relconsole.clock import FastClock
from relconsole.engine.journal import Journal, journal_path
from relconsole.engine.lease import Lease
from relconsole.fleet.folder import FolderFleet
from relconsole.fleet.rows import (
    ConfigTarget,
    FleetFeed,
    FleetRow,
    LastAction,
    RolloutTarget,
)
from relconsole.model import Actor
from relconsole.tui.app import ReleaseApp
from relconsole.tui.dialogs import ChoiceDialog
from relconsole.tui.fleet import FleetApp, FleetTable
from relconsole.tui.widgets.field import Field

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
SIZES = {"120x40": (120, 40), "80x24": (80, 24)}
MIN = 60.0
HOUR = 3600.0
DAY = 86400.0


class Rows:
    """A source that never runs: the test puts its rows into the feed."""

    def __init__(self, columns: tuple[str, ...], title: str = "Argo Rollouts") -> None:
        self.columns = columns
        self.title = title

    async def run(self, feed: FleetFeed) -> None:
        await asyncio.Event().wait()


ARGO_COLUMNS = ("context", "namespace", "name", "phase", "step", "weight", "age", "last")


def rollout(ctx: str, ns: str, name: str, phase: str, step: str = "", *,
            weights: tuple[int | None, int | None] = (None, None), age: float = DAY,
            message: str = "", last: LastAction | None = None) -> FleetRow:
    done, _, count = step.partition("/")
    return FleetRow(
        key=f"{ctx}/{ns}/{name}", name=name, phase=phase, context=ctx, namespace=ns,
        step=step, progress=int(done) / int(count) if step and int(count) else None,
        set_weight=weights[0], actual_weight=weights[1], created=NOW - age,
        message=message, last=last, target=RolloutTarget(name, ns, ctx, None),
    )


def fleet_rows() -> list[FleetRow]:
    """Twelve Rollouts in two clusters, in every phase the plugin computes."""
    alice = LastAction("abort", "alice@bastion-1", "5xx on /pay after 2.4.0", NOW - 3 * MIN)
    bob = LastAction("promote", "bob@bastion-2", "bake looked clean", NOW - 2 * HOUR)
    carol = LastAction("pause", "carol@laptop", "waiting for the DB migration", NOW - 20 * MIN)
    return [
        rollout("prod-eu", "shop", "checkout", "Degraded", "0/8", weights=(0, 0), age=40 * DAY,
                message="RolloutAborted: Rollout aborted update to revision 7", last=alice),
        rollout("prod-eu", "shop", "cart", "Progressing", "3/8", weights=(20, 20),
                age=12 * DAY, message="more replicas need to be updated"),
        rollout("prod-eu", "shop", "search", "Healthy", "8/8", weights=(100, 100),
                age=90 * DAY, last=bob),
        rollout("prod-eu", "payments", "ledger", "Paused", "1/4", weights=(10, 10),
                age=5 * DAY, message="CanaryPauseStep", last=carol),
        rollout("prod-eu", "payments", "fraud-scoring", "Healthy", "4/4", weights=(100, 100),
                age=200 * DAY),
        rollout("prod-eu", "identity", "login", "Paused", "5/6", weights=(80, 80), age=3 * HOUR,
                message="manually paused"),
        rollout("prod-us", "shop", "checkout", "Progressing", "2/8", weights=(10, 8),
                age=40 * DAY, message="updated replicas are still becoming available"),
        rollout("prod-us", "shop", "cart", "Healthy", "8/8", weights=(100, 100), age=12 * DAY),
        rollout("prod-us", "payments", "ledger", "Degraded", "1/4", weights=(10, 0),
                age=5 * DAY, message="ProgressDeadlineExceeded: ReplicaSet has timed out"),
        rollout("prod-us", "identity", "login", "Healthy", "6/6", weights=(100, 100),
                age=70 * DAY),
        rollout("prod-us", "search", "indexer-blue-green", "Paused", age=2 * DAY,
                message="BlueGreenPause"),
        rollout("prod-us", "search", "autocomplete", "Progressing", "1/3", weights=(5, None),
                age=10 * MIN, message="more replicas need to be updated"),
    ]


def fleet_app(rows: list[FleetRow] | None = None, columns: tuple[str, ...] = ARGO_COLUMNS,
              **kw: Any) -> FleetApp:
    feed = FleetFeed()
    feed.put(fleet_rows() if rows is None else rows)
    return FleetApp(Rows(columns), clock=lambda: NOW, feed=feed, start_source=False, **kw)


def names(app: FleetApp) -> list[str]:
    return [key.split("/", 1)[1] for key in app.shown]


def line(app: FleetApp, which: str) -> str:
    return app.query_one(f"#{which}", Field).text


def typed(text: str) -> list[str]:
    return ["space" if c == " " else c for c in text]


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.pause()


# --- typing filters --------------------------------------------------------------------


async def test_typing_filters_on_any_visible_text() -> None:
    app = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert len(app.shown) == 12
        await pilot.press(*typed("pay"))
        await settle(pilot)
        assert names(app) == ["payments/fraud-scoring", "payments/ledger", "shop/checkout",
                              "payments/ledger"]  # the namespace, and alice's "/pay" reason
        assert line(app, "filter").startswith("filter: pay▏  4 of 12 shown")
        await pilot.press(*typed(" prod-us"))
        await settle(pilot)
        assert app.shown == ["prod-us/payments/ledger"]
        await pilot.press("backspace", "backspace", *typed("eu"))  # "prod-us" → "prod-eu"
        await settle(pilot)
        assert app.query_text == "pay prod-eu"
        assert app.shown == ["prod-eu/payments/fraud-scoring", "prod-eu/payments/ledger",
                             "prod-eu/shop/checkout"]


async def test_a_filter_that_matches_nothing_says_how_to_clear_it() -> None:
    app = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*typed("zzz"))
        await settle(pilot)
        assert app.shown == []
        assert line(app, "detail") == "nothing matches “zzz” — esc clears the filter"


async def test_escape_clears_the_filter_first_and_then_quits_nothing() -> None:
    app = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*typed("degraded"))
        await settle(pilot)
        assert len(app.shown) == 2
        await pilot.press("escape")
        await settle(pilot)
        assert app.query_text == "" and len(app.shown) == 12
        await pilot.press("escape")
        await settle(pilot)
        assert app.is_running and app.return_value is None
        assert app.query_text == ""
        await pilot.press(*typed("cart"), "ctrl+u")
        await settle(pilot)
        assert app.query_text == "" and len(app.shown) == 12
        await pilot.press(*typed("q"))  # a letter is the filter's, even q
        await settle(pilot)
        assert app.is_running and app.query_text == "q"
        await pilot.press("ctrl+q")
        await settle(pilot)
    assert app.return_value is None


# --- sorting --------------------------------------------------------------------------------


async def test_arrows_choose_the_sort_column_and_ctrl_r_reverses_it() -> None:
    app = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.sort_column == "context"  # two clusters: by context, then name
        assert app.shown[:2] == ["prod-eu/identity/login", "prod-eu/payments/fraud-scoring"]
        await pilot.press("right", "right", "right")  # context → namespace → name → phase
        await settle(pilot)
        assert app.sort_column == "phase"
        assert app.shown[:2] == ["prod-eu/shop/checkout", "prod-us/payments/ledger"]
        labels = [str(c.label) for c in app.query_one(FleetTable).columns.values()]
        assert "phase ▲" in labels
        assert line(app, "filter").endswith("sort: phase ▲")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.shown[:2] == ["prod-eu/payments/fraud-scoring", "prod-eu/shop/search"]
        assert line(app, "filter").endswith("sort: phase ▼")
        await pilot.press("left")  # back to name, still reversed
        await settle(pilot)
        assert app.sort_column == "name"
        assert names(app)[0] == "shop/search"
        await pilot.press("left", "left", "left")  # namespace, context, then round to last
        await settle(pilot)
        assert app.sort_column == "last"


async def test_the_cursor_stays_on_its_rollout_when_the_row_moves() -> None:
    app = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.sort_by("phase")
        await settle(pilot)
        table = app.query_one(FleetTable)
        target = "prod-us/search/autocomplete"
        table.move_cursor(row=app.shown.index(target))
        await settle(pilot)
        row = app.feed.rows[target]
        app.feed.put([FleetRow(**{**row.__dict__, "phase": "Degraded"})])
        app.flush_now()
        await settle(pilot)
        assert app.shown.index(target) < 3  # it moved up with the other Degraded ones
        assert table.selected_key == target
        assert line(app, "detail").startswith("prod-us/search/autocomplete · Degraded")


# --- live updates ----------------------------------------------------------------------------


async def test_a_burst_of_changes_is_one_redraw_that_touches_only_changed_cells() -> None:
    app = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.query_one(FleetTable)
        before_redraws, before_rebuilds = table.redraws, table.rebuilds
        row = app.feed.rows["prod-eu/shop/cart"]
        for weight in range(21, 61):  # forty watch events before the screen looks
            app.feed.put([FleetRow(**{**row.__dict__, "set_weight": weight,
                                      "actual_weight": weight})])
        await settle(pilot)
        assert table.redraws == before_redraws + 1
        assert table.rebuilds == before_rebuilds  # rows updated in place
        assert table.get_cell("prod-eu/shop/cart", "weight").plain == "60/60"
        app.feed.put([app.feed.rows["prod-eu/shop/cart"]])  # nothing new
        await settle(pilot)
        assert table.redraws == before_redraws + 1


async def test_rows_come_and_go_and_a_failing_context_is_in_the_status_line() -> None:
    app = fleet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.query_one("#status").display
        app.feed.drop(["prod-us/shop/cart"])
        app.feed.put([rollout("prod-us", "shop", "wishlist", "Progressing", "1/2",
                              weights=(50, 50), age=MIN)])
        app.feed.status("prod-us", "kubernetes: cannot reach https://prod-us.example:6443: "
                        "connection refused — retrying in 4s", problem=True)
        app.flush_now()
        await settle(pilot)
        assert "prod-us/shop/cart" not in app.shown
        assert "prod-us/shop/wishlist" in app.shown
        status = app.query_one("#status", Field)
        assert status.display and status.has_class("-problem")
        assert status.text == ("prod-us: kubernetes: cannot reach https://prod-us.example:6443:"
                               " connection refused — retrying in 4s")
        assert line(app, "title").endswith("· 12 releases")
        app.feed.status("prod-us", "")
        app.flush_now()
        await settle(pilot)
        assert not app.query_one("#status").display


# --- attaching and coming back --------------------------------------------------------------


async def test_enter_attaches_to_the_selected_rollout() -> None:
    app = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*typed("ledger"))
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
    assert app.return_value == RolloutTarget("ledger", "payments", "prod-us", None)


async def test_back_from_a_console_the_sort_filter_and_selection_are_as_left() -> None:
    app = fleet_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*typed("shop"), "right", "right", "right", "ctrl+r", "down")
        await settle(pilot)
        selected = app.query_one(FleetTable).selected_key
        await pilot.press("enter")
        await settle(pilot)
    left = app.view
    assert (left.sort, left.reverse, left.query, left.selected) == (
        "phase", True, "shop", selected)
    again = fleet_app(view=left)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert again.query_one(FleetTable).selected_key == selected
        assert line(again, "filter").startswith("filter: shop▏  5 of 12 shown")
        assert line(again, "filter").endswith("sort: phase ▼")


def write_config(folder: Path, service: str) -> Path:
    text = EXAMPLE.read_text().replace("service: checkout-api", f"service: {service}", 1)
    path = folder / f"{service}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def configs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A folder of three configs: one released half-way by alice (who still drives),
    one not started, one broken; and the state folder their journals are in."""
    folder, state = tmp_path / "releases", tmp_path / "state"
    folder.mkdir()
    write_config(folder, "checkout-api")
    write_config(folder, "search-api")
    (folder / "broken.yaml").write_text("release: {service: x}\n")
    (folder / "notes.txt").write_text("not a config")
    alice = Actor("alice", "bastion-1")
    clock = FastClock(NOW - 10 * MIN)
    release = "checkout-api-2.3.0-production"
    journal = Journal(journal_path(state, release), clock, alice, release=release)
    journal.append("attach", reason="console started", outcome="verified",
                   after={"phase": "pending", "step": 0, "weight": 0})
    clock.advance(5 * MIN)
    journal.append("advance", reason="gates green", outcome="verified",
                   after={"phase": "progressing", "step": 2, "weight": 10})
    lease = Lease.acquire(state, release, alice)
    assert lease is not None
    yield folder, state
    lease.release()


def test_the_folder_source_reads_each_config_its_journal_and_lease(
    configs: tuple[Path, Path]
) -> None:
    folder, state = configs
    rows = {r.name: r for r in FolderFleet(folder, state=state).scan()}
    assert set(rows) == {"checkout-api-2.3.0-production", "search-api-2.3.0-production",
                         "broken"}
    live = rows["checkout-api-2.3.0-production"]
    assert (live.phase, live.step, live.actual_weight, live.driver) == (
        "in progress", "2/4", 10, "alice@bastion-1")
    assert live.last is not None
    assert live.last.text(NOW) == "advance → verified · alice@bastion-1 · 5m ago"
    assert live.target == ConfigTarget(folder / "checkout-api.yaml")
    idle = rows["search-api-2.3.0-production"]
    assert (idle.phase, idle.step, idle.driver, idle.last) == ("not started", "0/4", "", None)
    broken = rows["broken"]
    assert broken.phase == "config error" and "broken.yaml" in broken.message


async def test_enter_on_a_folder_release_attaches_its_config(
    configs: tuple[Path, Path]
) -> None:
    folder, state = configs
    app = FleetApp(FolderFleet(folder, state=state, interval=0.05), clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if len(app.shown) == 3:
                break
        assert app.columns == ("release", "phase", "step", "weight", "driver", "last",
                               "config")
        app.sort_by("release")
        await settle(pilot)
        table = app.query_one(FleetTable)
        assert table.get_cell(app.shown[1], "driver").plain == "alice@bastion-1"
        await pilot.press("down", "enter")
        await settle(pilot)
    assert app.return_value == ConfigTarget(folder / "checkout-api.yaml")


async def test_escape_in_a_console_opened_from_the_fleet_goes_back(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, fleet=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for opens in ("r", "question_mark", "g"):  # a dialog, the help, gate details:
            await pilot.press(opens)                # escape closes each, not the console
            await settle(pilot)
            assert len(app.screen_stack) == 2
            await pilot.press("escape")
            await settle(pilot)
            assert app.is_running and len(app.screen_stack) == 1
        await pilot.press("escape")
        await settle(pilot)
    assert app.to_fleet


async def test_escape_while_driving_asks_as_q_does_then_goes_back(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, fleet=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("escape")  # driving mid-release: how to leave it, first
        await settle(pilot)
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("up", "enter")  # leave it as it is
        await settle(pilot)
    assert app.to_fleet
    assert "nobody drives it" in app.exit_line


async def test_q_in_a_console_opened_from_the_fleet_still_quits_everything(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, fleet=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("escape")  # escape in the question only cancels it
        await settle(pilot)
        assert app.is_running and not isinstance(app.screen, ChoiceDialog)
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("up", "enter")
        await settle(pilot)
    assert not app.to_fleet


async def test_escape_does_nothing_in_a_console_not_opened_from_the_fleet(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.is_running
        titles = [c.title for c in app.palette_commands()]
        assert "Back to the fleet" not in titles
    fleet = ReleaseApp(rig.engine, start_engine=False, fleet=True)
    assert "Back to the fleet" in [c.title for c in fleet.palette_commands()]


def test_the_cli_goes_fleet_console_fleet_and_out(
    configs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`relconsole fleet --dir`: enter attaches the config's console (as `run -c`), escape
    there shows the fleet again with the console's exit line, ctrl+q ends."""
    folder, state = configs
    shown: list[str] = []
    answers = iter([ConfigTarget(folder / "search-api.yaml"), None])

    def fleet_run(self: FleetApp, *a: Any, **kw: Any) -> Any:
        shown.append(f"fleet (notice {self.notice!r}) over {self.source.title}")
        return next(answers)

    def console_run(self: ReleaseApp, *a: Any, **kw: Any) -> Any:
        shown.append(f"console {self.engine.plan.release_id} ({self.engine.mode.value})")
        self.to_fleet, self.exit_line = True, "relconsole: left as it was"

    monkeypatch.setattr(FleetApp, "run", fleet_run)
    monkeypatch.setattr(ReleaseApp, "run", console_run)
    code = cli.main(["fleet", "--dir", str(folder), "--state-dir", str(state)])
    assert code == 0
    assert shown == [
        f"fleet (notice '') over configs in {folder}",
        "console search-api-2.3.0-production (drive)",
        f"fleet (notice 'relconsole: left as it was') over configs in {folder}",
    ]


def test_the_cli_attaches_a_rollout_through_its_own_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enter on a Rollout: the console opens on it (a config made for it by
    `config_for_rollout`), against a FAKE API server; escape comes back to the fleet."""
    import yaml

    from tests.fake_kube import ROLLOUTS, FakeKube

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    seen: list[str] = []
    config = tmp_path / "kubeconfig"
    answers = iter([RolloutTarget("checkout", "shop", "prod", str(config)), None])
    with FakeKube(user="oncall") as fake:
        fake.seed(ROLLOUTS, "shop", {
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "checkout"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "checkout"}},
                     "template": {"metadata": {"labels": {"app": "checkout"}},
                                  "spec": {"containers": [{"name": "a", "image": "a:1"}]}},
                     "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}}})
        fake.step_controller()
        config.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "prod", "cluster": {"server": fake.url}}],
            "users": [{"name": "u", "user": {"token": "fake-token-0123456789abcdef"}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "u",
                                                      "namespace": "shop"}}],
            "current-context": "prod"}))

        def fleet_run(self: FleetApp, *a: Any, **kw: Any) -> Any:
            seen.append(f"fleet (notice {self.notice!r})")
            return next(answers)

        def console_run(self: ReleaseApp, *a: Any, **kw: Any) -> Any:
            seen.append(f"console on {self.engine.plan.service} ({self.engine.mode.value})")
            self.to_fleet, self.exit_line = True, "left"

        monkeypatch.setattr(FleetApp, "run", fleet_run)
        monkeypatch.setattr(ReleaseApp, "run", console_run)
        code = cli.main(["fleet", "--kubeconfig", str(config), "--context", "prod",
                         "--state-dir", str(tmp_path / "state")])
    assert code == 0
    assert seen == ["fleet (notice '')", "console on checkout (drive)", "fleet (notice 'left')"]


def test_the_cli_refuses_mixed_sources_and_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["fleet", "--dir", str(tmp_path), "--namespace", "shop"]) == 2
    assert "give one or the other" in capsys.readouterr().err
    assert cli.main(["fleet", "--dir", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_the_cli_says_why_a_rollout_cannot_be_attached_and_stays_in_the_fleet(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from relconsole import assembly

    notices: list[str] = []
    answers = iter([RolloutTarget("checkout", "shop", None, None), None])

    def fleet_run(self: FleetApp, *a: Any, **kw: Any) -> Any:
        notices.append(self.notice)
        return next(answers)

    def refuse(**kw: Any) -> Any:
        raise cli.CliError(f"rollout {kw['namespace']}/{kw['rollout']} not found")

    monkeypatch.setattr(FleetApp, "run", fleet_run)
    monkeypatch.setattr(assembly, "config_for_rollout", refuse, raising=False)
    assert cli.main(["fleet", "--namespace", "shop"]) == 0
    assert notices == ["", "not attached: rollout shop/checkout not found"]


# --- snapshots ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_two_clusters(snap_compare, size: str) -> None:
    """Twelve Rollouts in two contexts, one of them unreachable, sorted by phase, the
    cursor on the aborted checkout (its message and who aborted it below the table)."""
    app = fleet_app()
    app.feed.status("prod-us", "kubernetes: cannot reach https://prod-us.example:6443: "
                    "connection refused — retrying in 8s", problem=True)

    async def run_before(pilot: Any) -> None:
        app.sort_by("phase")
        await settle(pilot)
        app.query_one(FleetTable).move_cursor(row=0)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


def test_snapshot_filtered_under_no_color(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = fleet_app()
    assert snap_compare(app, terminal_size=(80, 24), press=[*typed("shop")])


def test_snapshot_folder(snap_compare, configs: tuple[Path, Path],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder, state = configs
    monkeypatch.chdir(folder.parent)  # the title names the folder: the same every run
    feed = FleetFeed()
    source = FolderFleet(Path(folder.name), state=state)
    feed.put(source.scan())
    app = FleetApp(source, clock=lambda: NOW, feed=feed, start_source=False)
    assert snap_compare(app, terminal_size=(80, 24))



def test_a_run_console_opens_the_fleet_from_the_palette(
    configs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`relconsole run -c FILE`: the palette's "Open the fleet" leaves the console (its
    session closed, the lease free) for the fleet of the config's folder."""
    folder, state = configs
    shown: list[str] = []

    def console_run(self: ReleaseApp, *a: Any, **kw: Any) -> Any:
        titles = [c.title for c in self.palette_commands()]
        assert "Open the fleet" in titles and "Back to the fleet" not in titles
        shown.append(f"console {self.engine.plan.release_id}")
        self.to_fleet = True  # what choosing "Open the fleet" leaves behind

    def fleet_run(self: FleetApp, *a: Any, **kw: Any) -> Any:
        # The console's lease is free again: nobody drives while the fleet is open.
        from relconsole.engine.lease import current_holder

        assert current_holder(state, "search-api-2.3.0-production") is None
        shown.append(f"fleet over {self.source.title}")
        return None

    monkeypatch.setattr(ReleaseApp, "run", console_run)
    monkeypatch.setattr(FleetApp, "run", fleet_run)
    code = cli.main(["run", "-c", str(folder / "search-api.yaml"), "--state-dir", str(state)])
    assert code == 0
    assert shown == ["console search-api-2.3.0-production", f"fleet over configs in {folder}"]


async def test_the_palette_entry_leaves_for_the_fleet(rig: Rig) -> None:
    await healthy_mid_release(rig)
    app = ReleaseApp(rig.engine, start_engine=False, fleet_entry=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        entry = next(c for c in app.palette_commands() if c.title == "Open the fleet")
        await entry.callback()  # type: ignore[misc]
        await settle(pilot)
        if isinstance(app.screen, ChoiceDialog):  # it drives: leaving asks how, as q does
            await pilot.press("up", "enter")
            await settle(pilot)
        running = app.is_running
    assert not running and app.to_fleet
    assert app.exit_line  # where the release was left, shown above the fleet
