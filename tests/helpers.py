"""Builders shared by the engine, headless and console tests."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from relconsole.assembly import Session, demo_config, open_session
from relconsole.clock import FastClock
from relconsole.model import Actor, Phase, Route, TrafficState
from relconsole.providers.sim import SimTraffic, SimWorld


def demo_session(
    scenario: str = "healthy",
    seed: int = 7,
    *,
    auto_advance: bool = True,
    watch: bool = False,
    state: Path | None = None,
    clock: FastClock | None = None,
    actor: Actor | None = None,
    **plan_changes: Any,
) -> Session:
    cfg = demo_config(scenario, seed, auto_advance=auto_advance)
    if plan_changes:
        cfg = dataclasses.replace(cfg, plan=dataclasses.replace(cfg.plan, **plan_changes))
    return open_session(cfg, clock=clock or FastClock(), watch=watch, state=state, actor=actor)


def world(session: Session) -> SimWorld:
    return session.providers.shared["sim.world"]


async def run_until(session: Session, done, *, max_ticks: int = 2000) -> int:
    """Tick the engine on its fast clock until `done(engine)`; returns ticks used."""
    engine = session.engine
    for n in range(max_ticks):
        if done(engine):
            return n
        await engine.clock.sleep(engine.plan.poll_interval)
        await engine.tick()
    raise AssertionError(f"not done after {max_ticks} ticks: phase {engine.phase}")


def terminal(engine) -> bool:
    return engine.phase.terminal or engine.phase is Phase.PAUSED





def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, made by openssl (required under CI=true)."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is required under CI=true (it makes the test certificate)")
        pytest.skip("openssl not installed (needed to make a test certificate)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


class RoutedSim(SimTraffic):
    """The simulator's weight plus a route, as a RouteTraffic provider (HAProxy's maps,
    a mirror hook, batches of servers) reports both: a double for engine and screen tests."""

    def __init__(self, world: SimWorld) -> None:
        super().__init__(world)
        self.route = Route()
        self.calls: list[tuple[int, Route]] = []
        self.ignore_route = False  # a provider that says it did, and did not
        self.action_timeout = 120.0
        self.weight = 0

    async def read(self) -> TrafficState:
        state = await super().read()
        return dataclasses.replace(state, canary_weight=self.weight, route=self.route)

    async def set_route(self, weight: int, route: Route, *, reason: str) -> None:
        self.calls.append((weight, route))
        self.weight = weight
        if not self.ignore_route:
            self.route = route
        # A cohort or a mirror sends the canary requests at weight 0: the simulated
        # canary serves a share, so its gates have evidence, as a real cohort's do.
        self.world.apply_weight(max(weight, 5) if self.route.cohorts or self.route.mirror
                                else weight)
