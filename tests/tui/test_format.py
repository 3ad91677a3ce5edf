"""Numbers leave the UI with units; missing values are a dash, never zero."""

from __future__ import annotations

import math

import pytest

from relconsole.model import GateSpec
from relconsole.tui import format as fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0021, "0.21 %"), (0.05, "5.00 %"), (0.125, "12.5 %"), (1.0, "100 %"),
     (None, "—"), (math.nan, "—"), (math.inf, "—")],
)
def test_percent(value, text) -> None:
    assert fmt.percent(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.182, "182 ms"), (0.0042, "4.2 ms"), (12.34, "12.3 s"), (None, "—")],
)
def test_millis(value, text) -> None:
    assert fmt.millis(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.2, "1s"), (45, "45s"), (72, "1m12s"), (120, "2m00s"), (3725, "1h02m")],
)
def test_duration_rounds_up(seconds, text) -> None:
    assert fmt.duration(seconds) == text


def test_metric_units() -> None:
    assert fmt.metric(0.0021, "ratio") == "0.21 %"
    assert fmt.metric(0.15, "seconds") == "150 ms"
    assert fmt.metric(412.0, "req/s") == "412 req/s"
    assert fmt.metric(None, "ratio") == "—"


def test_threshold_in_the_metric_unit() -> None:
    spec = GateSpec("error_rate", max=0.01, max_increase=0.005)
    assert fmt.threshold(spec, "ratio") == "≤1 % Δ≤0.5 %"
    assert fmt.threshold(GateSpec("latency_p99", max_ratio=1.3), "seconds") == "×≤1.3"
    assert fmt.threshold(GateSpec("latency_p99", max=0.5), "seconds") == "≤500 ms"
    assert fmt.threshold(GateSpec("x", max=3), "") == "≤3"


def test_gate_spec_describes_its_threshold_with_any_value_formatter() -> None:
    spec = GateSpec("error_rate", max=0.01, max_increase=0.001, max_ratio=1.2)
    assert spec.describe() == "≤0.01 Δ≤0.001 ×≤1.2"  # the docstring's example
    assert spec.describe(lambda v: f"{v * 100:g}%") == "≤1% Δ≤0.1% ×≤1.2"
    assert GateSpec("x").describe() == "—"


def test_ratio_and_delta() -> None:
    assert fmt.ratio(0.16, 0.15) == "×1.07"
    assert fmt.ratio(0.1, 0.0) == "—"
    assert fmt.delta(-0.0002, "ratio") == "−0.02 %"
