"""The sandbox (a real Prometheus and HAProxy in front of a two-version service) shared by
every integration module of the session: starting it costs seconds, so it starts once.

Tests that inject faults do it through their own FaultProxy (tests/faults/proxy.py) and
put back anything of the sandbox they change, so `box` hands each test a clean sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.faultkit import warm_canary
from tests.sandbox_stack import Sandbox, start_sandbox, wait_clean
from tests.unleash_server import UnleashServer, unleash_server


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    # 80 req/s: gates judged on counts need requests, and at 20 % canary the default
    # 40 req/s brings a handful a poll (each 40 req/s costs about a tenth of a core).
    yield from start_sandbox(tmp_path_factory.mktemp("sandbox"), rate=80.0)


@pytest.fixture
def box(sandbox: Sandbox) -> Sandbox:
    wait_clean(sandbox)
    return sandbox


@pytest.fixture(scope="module")
def strategy_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A second sandbox for the strategy tests (blue-green, A/B cohorts): they drain
    servers and fill HAProxy's maps, and as a group of their own they run on another
    worker than the first sandbox's long queue of tests. One per module, stopped when the
    module is done: a session's worth of its load generator would slow every other test."""
    yield from start_sandbox(tmp_path_factory.mktemp("strategy-sandbox"), rate=80.0)


@pytest.fixture
def strategy_box(strategy_sandbox: Sandbox) -> Sandbox:
    wait_clean(strategy_sandbox)
    return strategy_sandbox


@pytest.fixture(scope="module")
def sandbox_at_20(sandbox: Sandbox) -> Iterator[Sandbox]:
    """For the fault rows of one module; the sandbox is reset when the module is done."""
    wait_clean(sandbox)
    try:
        yield sandbox
    finally:
        sandbox.reset()


@pytest.fixture
def warm(sandbox_at_20: Sandbox) -> Sandbox:
    """The sandbox at 20 % canary, Prometheus up and holding the canary's traffic, so a
    fault row starts from passing gates and any no-data is the injected fault's."""
    box = sandbox_at_20
    if not box.running().get("prometheus"):
        box.start("prometheus")
    warm_canary(box, 20)
    return box


@pytest.fixture(scope="session")
def unleash() -> Iterator[UnleashServer]:
    """A real unleash-server on PostgreSQL (tests/unleash_server.py), one per session;
    shared by test_unleash.py and test_faults_unleash.py."""
    with unleash_server() as server:
        print(f"\nUnleash up in {server.startup_seconds:.1f}s at {server.url}")
        with server.admin() as admin:
            # Owners are tags of type "owner" (Unleash has no owner field of its own).
            admin.post("/api/admin/tag-types",
                       json={"name": "owner", "description": "team that owns the flag"})
        yield server
