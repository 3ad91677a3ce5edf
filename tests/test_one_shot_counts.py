"""Issue 11: a console that attaches mid-step judges the step's counts, not one reading.

A one-shot command (`status`, `advance`) polls once. A gate judged on counts needs two
readings of the counters, so on its own it would have nothing but a starting point and
every one-shot `advance` would be refused for "no data". The engine takes the counters as
they stood when the step began (Prometheus keeps their history; the simulator draws the
interval) as the starting point, so the one poll brings the whole step's requests.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.test_guarded_cli import busy_example, relconsole, status


def test_status_mid_step_counts_the_requests_since_the_step_began(tmp_path: Path) -> None:
    state, cfg = tmp_path / "state", busy_example(tmp_path)
    assert relconsole(state, "advance", *cfg, "--reason", "start").returncode == 0  # → 1 %
    time.sleep(2.0)
    gate = next(g for g in status(state, *cfg)["gates"] if g["gate"] == "error_rate")
    assert gate["judged"] == "counts", gate
    assert "first reading" not in gate["reason"], gate
    # 1 % of 4000 req/s for the two seconds (and more) since the advance: ~80 requests.
    assert gate["evidence"]["canary_total"] >= 40, gate
