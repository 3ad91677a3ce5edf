"""A watcher follows the release its driver moves, and never takes the lease (issue 10,
item 3). Driver and watcher here are two sessions with their own providers, sharing only
the state folder — as two processes on a bastion do."""

from __future__ import annotations

from pathlib import Path

from relconsole.assembly import open_session
from relconsole.clock import FastClock
from relconsole.config import load_config
from relconsole.engine.lease import current_holder
from relconsole.model import Actor, Mode

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"


async def test_a_watcher_shows_the_weight_the_driver_set(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE, resolve_secrets=False)
    clock = FastClock()
    driver = open_session(cfg, clock=clock, state=tmp_path, actor=Actor("alice", "bastion"))
    watcher = open_session(cfg, clock=clock, state=tmp_path, watch=True,
                           actor=Actor("bob", "bastion"))
    try:
        await driver.engine.attach()
        await watcher.engine.attach()
        assert watcher.engine.snapshot().weight == 0
        result = await driver.engine.advance("first step")
        assert result.ok, result.message
        await watcher.engine.tick()
        seen = watcher.engine.snapshot()
        assert seen.weight == driver.engine.snapshot().weight == 1
        assert seen.step_index == 0  # "step 1/4", as the driver's screen says
        assert seen.mode is Mode.WATCH and seen.driver.startswith("alice@bastion")
        holder = current_holder(tmp_path, cfg.plan.release_id)
        assert holder is not None and holder.holder.startswith("alice@bastion")
    finally:
        await watcher.close()
        await driver.close()
