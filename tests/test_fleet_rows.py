"""relconsole.fleet.rows: what the fleet table shows, filters and sorts on."""

from __future__ import annotations

import json

import pytest

from relconsole.fleet.rows import (
    FleetFeed,
    FleetRow,
    LastAction,
    age_text,
    cell_texts,
    filtered,
    parse_last_action,
    parse_time,
    sort_rows,
    weight_text,
)

NOW = 1_800_000_000.0


def row(name: str, phase: str = "Healthy", **kw: object) -> FleetRow:
    ns = str(kw.pop("namespace", "shop"))
    ctx = str(kw.pop("context", "prod"))
    return FleetRow(key=f"{ctx}/{ns}/{name}", name=name, phase=phase, namespace=ns,
                    context=ctx, **kw)  # type: ignore[arg-type]


def names(rows: list[FleetRow]) -> list[str]:
    return [r.name for r in rows]


# --- ages and the last action -----------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "<1m"), (59, "<1m"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h"),
    (86400, "1d"), (45 * 86400, "45d"), (None, "—"), (float("nan"), "—"),
])
def test_ages_are_coarse(seconds: float | None, text: str) -> None:
    assert age_text(seconds) == text


def test_last_action_reads_the_annotation_and_says_who_and_when() -> None:
    raw = json.dumps({"action": "abort", "actor": "alice@bastion", "reason": "5xx on /pay",
                      "at": "2027-01-15T08:00:00Z"})
    last = parse_last_action(raw)
    assert last is not None
    assert last.reason == "5xx on /pay"
    assert last.text(parse_time("2027-01-15T08:03:30Z") or 0) == "abort · alice@bastion · 3m ago"


def test_last_action_names_an_actor_given_as_an_object_and_an_epoch_time() -> None:
    raw = json.dumps({"action": "promote", "actor": {"user": "bob", "host": "b2"},
                      "at": NOW - 7200})
    last = parse_last_action(raw)
    assert last is not None and last.text(NOW) == "promote · bob@b2 · 2h ago"


@pytest.mark.parametrize("raw", [None, "", "not json", "[1, 2]", '{"actor": "x"}',
                                 '{"action": ""}'])
def test_an_unreadable_annotation_is_no_last_action(raw: str | None) -> None:
    assert parse_last_action(raw) is None


def test_a_last_action_without_a_readable_time_leaves_the_time_out() -> None:
    last = parse_last_action(json.dumps({"action": "pause", "actor": "c@d", "at": "noon"}))
    assert last is not None and last.text(NOW) == "pause · c@d"
    # A time without its zone could be hours off: it is not guessed.
    assert parse_time("2027-01-15T08:00:00") is None


# --- cells ----------------------------------------------------------------------------------


def test_cells_show_step_weights_age_and_last_action() -> None:
    r = row("checkout", "Paused", step="3/8", set_weight=20, actual_weight=15,
            created=NOW - 3 * 86400, last=LastAction("abort", "alice@bastion", at=NOW - 180))
    cells = cell_texts(r, NOW)
    assert (cells["step"], cells["weight"], cells["age"], cells["last"]) == (
        "3/8", "20/15", "3d", "abort · alice@bastion · 3m ago")


@pytest.mark.parametrize(("set_w", "actual", "text"), [
    (20, 20, "20/20"), (20, None, "20/—"), (None, None, "—"), (None, 10, "10%"),
])
def test_weights(set_w: int | None, actual: int | None, text: str) -> None:
    assert weight_text(row("a", set_weight=set_w, actual_weight=actual)) == text


# --- filter --------------------------------------------------------------------------------


ROWS = [
    row("checkout", "Paused", namespace="shop", step="1/4",
        last=LastAction("pause", "alice@bastion", "waiting for QA", NOW - 60)),
    row("payments", "Degraded", namespace="money", message="RolloutAborted: aborted"),
    row("search", "Healthy", namespace="shop", context="staging"),
    row("cart", "Progressing", namespace="shop"),
]


def test_filter_matches_any_visible_text_case_insensitively() -> None:
    assert names(filtered(ROWS, "SHOP", NOW)) == ["checkout", "search", "cart"]
    assert names(filtered(ROWS, "alice", NOW)) == ["checkout"]  # the last action's actor
    assert names(filtered(ROWS, "staging", NOW)) == ["search"]  # the context
    assert names(filtered(ROWS, "degr", NOW)) == ["payments"]  # the phase


def test_every_word_of_the_filter_must_match() -> None:
    assert names(filtered(ROWS, "shop pa", NOW)) == ["checkout"]
    assert names(filtered(ROWS, "shop  nothing", NOW)) == []
    assert names(filtered(ROWS, "   ", NOW)) == names(ROWS)


def test_filter_also_finds_the_message_and_the_reason_shown_under_the_table() -> None:
    assert names(filtered(ROWS, "rolloutaborted", NOW)) == ["payments"]
    assert names(filtered(ROWS, "for qa", NOW)) == ["checkout"]


def test_filter_sees_only_the_columns_the_source_has() -> None:
    # A folder source has no context column: "staging" is not on screen there.
    assert names(filtered(ROWS, "staging", NOW, columns=("name", "phase"))) == []


# --- sort ---------------------------------------------------------------------------------


def test_sort_by_name_is_natural_and_ties_go_by_context_and_namespace() -> None:
    rows = [row("web-10"), row("web-2"), row("web-2", namespace="alpha"), row("Web-1")]
    assert [(r.namespace, r.name) for r in sort_rows(rows, "name")] == [
        ("shop", "Web-1"), ("alpha", "web-2"), ("shop", "web-2"), ("shop", "web-10")]


def test_sort_by_phase_puts_what_needs_a_human_first() -> None:
    assert names(sort_rows(ROWS, "phase")) == ["payments", "checkout", "cart", "search"]
    assert names(sort_rows(ROWS, "phase", reverse=True)) == [
        "search", "cart", "checkout", "payments"]


def test_unknown_values_sort_last_both_ways() -> None:
    rows = [row("a", set_weight=50, actual_weight=50), row("b"),
            row("c", set_weight=20, actual_weight=None), row("d", actual_weight=80)]
    assert names(sort_rows(rows, "weight")) == ["c", "a", "d", "b"]
    assert names(sort_rows(rows, "weight", reverse=True)) == ["d", "a", "c", "b"]


def test_sort_by_age_is_youngest_first_and_by_last_action_most_recent_first() -> None:
    rows = [row("old", created=NOW - 86400, last=LastAction("a", "x", at=NOW - 10)),
            row("new", created=NOW - 60, last=LastAction("a", "x", at=NOW - 999)),
            row("never")]
    assert names(sort_rows(rows, "age")) == ["new", "old", "never"]
    assert names(sort_rows(rows, "last")) == ["old", "new", "never"]


def test_sort_by_step_goes_by_how_far_the_release_is() -> None:
    rows = [row("half", step="4/8", progress=0.5), row("start", step="0/3", progress=0.0),
            row("bg")]
    assert names(sort_rows(rows, "step")) == ["start", "half", "bg"]


def test_an_unknown_sort_column_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown column"):
        sort_rows(ROWS, "colour")


# --- the feed -----------------------------------------------------------------------------


def test_the_feed_marks_only_real_changes_and_calls_once_per_batch() -> None:
    calls: list[int] = []
    feed = FleetFeed(lambda: calls.append(1))
    feed.put([row("a"), row("b")])
    feed.put([row("a", "Paused")])
    assert calls == [1]  # not again until drained
    drained = feed.drain()
    assert drained.keys == {"prod/shop/a", "prod/shop/b"} and not drained.statuses
    feed.put([row("a", "Paused")])  # the same row again: a watch event that changes nothing
    assert feed.drain().keys == set() and calls == [1]
    assert feed.events == 4
    feed.drop(["prod/shop/b", "prod/shop/nothing"])
    assert calls == [1, 1] and feed.drain().keys == {"prod/shop/b"}
    assert list(feed.rows) == ["prod/shop/a"]


def test_the_feed_keeps_one_status_line_per_source() -> None:
    feed = FleetFeed()
    feed.status("prod", "kubernetes: cannot reach https://prod", problem=True)
    feed.status("staging", "showing namespace shop only")
    assert feed.drain().statuses
    assert feed.problems() == {"prod": "kubernetes: cannot reach https://prod"}
    feed.status("prod", "")
    assert feed.drain().statuses and feed.problems() == {}
    feed.status("staging", "showing namespace shop only")
    assert not feed.drain().statuses  # unchanged
