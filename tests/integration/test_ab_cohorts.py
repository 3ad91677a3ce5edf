"""A/B cohorts on the real HAProxy of the sandbox: the sandbox's backend has the ACLs and
`use-server` rule of relconsole/providers/haproxy_cohorts.py (examples/sandbox/launcher.py
`haproxy_config`), relconsole fills their maps through the runtime API, and the tests send
requests through the frontend and count which version answered (the service says its
version in every answer). HAProxy's own `show map` and `get weight` are the evidence.
"""

from __future__ import annotations

import threading
import time
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from relconsole.clock import FastClock
from relconsole.model import Cohort, ReleasePlan, Route, Step
from relconsole.providers.base import BuildContext, ProviderError
from relconsole.providers.haproxy_cohorts import HAProxyCohorts, build_cohort_traffic
from tests.sandbox_stack import CANARY_VERSION, Headless, Sandbox, launcher

pytestmark = pytest.mark.integration


@pytest.fixture
def box(strategy_box: Sandbox) -> Sandbox:
    """This module's tests use the strategy sandbox (tests/integration/conftest.py)."""
    return strategy_box
STABLE = launcher.STABLE_VERSION
BETA = Cohort("beta-users", header="X-User-Group", values=("beta",))
BY_COOKIE = Cohort("by-cookie", cookie="rc_cohort", values=("canary",))
STICKY = Cohort("sticky-10", hash="X-User-Id", percent=10)
KIND = {"beta-users": "header", "by-cookie": "cookie", "sticky-10": "hash"}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def map_path(box: Sandbox, cohort: str) -> str:
    return str(box.run_dir / launcher.COHORT_MAPS[KIND[cohort]])


def provider(box: Sandbox) -> HAProxyCohorts:
    cohorts = (BETA, BY_COOKIE, STICKY)
    steps = (*(Step(0, 60, route=Route(cohorts=(c.name,))) for c in cohorts), Step(100))
    plan = ReleasePlan(service="sandbox-api", version=CANARY_VERSION, environment="sandbox",
                       strategy="ab", steps=steps, cohorts=cohorts)
    raw = {"type": "haproxy", "socket": str(box.socket_path), "backend": "app",
           "stable": "stable", "canary": "canary",
           "maps": {c.name: map_path(box, c.name) for c in cohorts}}
    return build_cohort_traffic(raw, BuildContext(plan=plan, clock=FastClock()))


def version(box: Sandbox, headers: dict[str, str] | None = None) -> str:
    """Which version answered one request through HAProxy's frontend."""
    request = urllib.request.Request(f"http://127.0.0.1:{box.ports.frontend}/",
                                     headers=headers or {})
    with OPENER.open(request, timeout=5) as response:
        body = response.read().decode()
    for v in (CANARY_VERSION, STABLE):
        if body.strip().endswith(v):
            return v
    raise AssertionError(f"no version in the answer: {body!r}")


def count(box: Sandbox, headers: dict[str, str] | None, n: int = 30) -> Counter[str]:
    return Counter(version(box, headers) for _ in range(n))


def show_map(box: Sandbox, cohort: str) -> list[tuple[str, str]]:
    reply = box.runtime(f"show map {map_path(box, cohort)}")
    return [(w[1], w[2]) for w in (line.split() for line in reply.splitlines()) if len(w) == 3]


@pytest.fixture
def cohorts(box: Sandbox) -> Iterator[HAProxyCohorts]:
    traffic = provider(box)
    yield traffic
    for cohort in KIND:  # whatever a test left, the next one starts with empty maps
        box.runtime(f"clear map {map_path(box, cohort)}")


# ----------------------------------------------------------------------------- the provider


async def test_a_header_cohort_reaches_the_canary_at_weight_zero(
    box: Sandbox, cohorts: HAProxyCohorts,
) -> None:
    await cohorts.set_route(0, Route(cohorts=("beta-users",)), reason="cohort step")
    assert show_map(box, "beta-users") == [("beta", "canary")]
    assert box.weights() == {"stable": 100, "canary": 0}  # use-server ignores the weight
    assert count(box, {"X-User-Group": "beta"}) == {CANARY_VERSION: 30}
    assert count(box, None) == {STABLE: 30}
    assert count(box, {"X-User-Group": "alpha"}) == {STABLE: 30}
    state = await cohorts.read()
    assert state.canary_weight == 0 and state.route.cohorts == ("beta-users",)

    # A canary in maintenance is skipped: its cohort falls back to the weights (stable).
    box.runtime("set server app/canary state maint")
    try:
        assert count(box, {"X-User-Group": "beta"}, 10) == {STABLE: 10}
    finally:
        box.runtime("set server app/canary state ready")

    await cohorts.set_route(0, Route(), reason="roll back")
    assert show_map(box, "beta-users") == []
    assert count(box, {"X-User-Group": "beta"}) == {STABLE: 30}
    assert not (await cohorts.read()).route


async def test_a_cookie_cohort_then_weights_then_rollback(
    box: Sandbox, cohorts: HAProxyCohorts,
) -> None:
    route = Route(cohorts=("by-cookie",))
    await cohorts.set_route(0, route, reason="cohort step")
    assert show_map(box, "by-cookie") == [("canary", "canary")]
    assert count(box, {"Cookie": "session=abc; rc_cohort=canary; theme=dark"}) == \
        {CANARY_VERSION: 30}
    assert count(box, {"Cookie": "rc_cohort=stable"}) == {STABLE: 30}

    await cohorts.set_route(50, route, reason="weight step")
    assert box.weights() == {"stable": 50, "canary": 50}
    assert count(box, {"Cookie": "rc_cohort=canary"}) == {CANARY_VERSION: 30}
    plain = count(box, None, 40)
    # Round-robin at 50/50, shared with the sandbox's own load: both serve, about half each.
    assert 8 <= plain[CANARY_VERSION] <= 32 and plain[STABLE] == 40 - plain[CANARY_VERSION]
    state = await cohorts.read()
    assert state.canary_weight == 50 and state.route.same(route)

    await cohorts.set_route(0, Route(), reason="gate failed")
    assert show_map(box, "by-cookie") == []
    assert box.weights() == {"stable": 100, "canary": 0}
    assert count(box, {"Cookie": "rc_cohort=canary"}) == {STABLE: 30}
    assert count(box, None) == {STABLE: 30}


async def test_a_sticky_hash_sends_the_same_tenth_of_users_to_the_canary(
    box: Sandbox, cohorts: HAProxyCohorts,
) -> None:
    await cohorts.set_route(0, Route(cohorts=("sticky-10",)), reason="cohort step")
    assert sorted(show_map(box, "sticky-10"), key=lambda e: int(e[0])) == [
        (str(b), "canary") for b in range(10)]
    users = [f"user-{i}" for i in range(400)]
    first = {u: version(box, {"X-User-Id": u}) for u in users}
    on_canary = {u for u, v in first.items() if v == CANARY_VERSION}
    assert 0.05 <= len(on_canary) / len(users) <= 0.15
    # The bucket is CRC-32 of the id mod 100, as the module documents (zlib's CRC-32).
    assert on_canary == {u for u in users if zlib.crc32(u.encode()) % 100 < 10}
    again = {u: version(box, {"X-User-Id": u}) for u in users}
    assert again == first  # sticky: each user sees the same version every time
    assert count(box, None) == {STABLE: 30}  # no id, no cohort

    await cohorts.set_route(0, Route(), reason="roll back")
    assert show_map(box, "sticky-10") == []
    assert {version(box, {"X-User-Id": u}) for u in sorted(on_canary)} == {STABLE}


async def test_a_haproxy_restart_drops_the_entries_and_the_read_says_so(
    box: Sandbox, cohorts: HAProxyCohorts,
) -> None:
    await cohorts.set_route(0, Route(cohorts=("beta-users",)), reason="cohort step")
    box.stop("haproxy")
    box.start("haproxy")  # the same haproxy.cfg, its map files empty: a reload's effect
    assert show_map(box, "beta-users") == []
    with pytest.raises(ProviderError, match=r"entries relconsole added to .* are gone — "
                                            r"runtime map entries are lost when HAProxy"):
        await cohorts.read()
    await cohorts.set_route(0, Route(cohorts=("beta-users",)), reason="apply again")
    assert count(box, {"X-User-Group": "beta"}, 10) == {CANARY_VERSION: 10}


async def test_an_entry_added_by_hand_is_reported_and_survives_rollback(
    box: Sandbox, cohorts: HAProxyCohorts,
) -> None:
    await cohorts.set_route(0, Route(cohorts=("beta-users",)), reason="cohort step")
    box.runtime(f"add map {map_path(box, 'beta-users')} qa canary")
    with pytest.raises(ProviderError, match="did not write: 'qa canary'"):
        await cohorts.read()
    with pytest.raises(ProviderError, match="rolled back what relconsole writes, but not "
                                            "verified"):
        await cohorts.set_route(0, Route(), reason="roll back")
    assert show_map(box, "beta-users") == [("qa", "canary")]
    assert count(box, {"X-User-Group": "beta"}, 10) == {STABLE: 10}
    assert count(box, {"X-User-Group": "qa"}, 10) == {CANARY_VERSION: 10}  # truly not done


# ----------------------------------------------------------------------------- headless


class BetaUsers:
    """Requests from the beta cohort (the sandbox's load sends no header), so the canary has
    traffic for its gates during the cohort step."""

    def __init__(self, box: Sandbox, rate: float = 25.0) -> None:
        self.box = box
        self.rate = rate
        self.answers: list[tuple[float, str]] = []  # (when sent, which version answered)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1 / self.rate):
            sent = time.monotonic()
            try:
                self.answers.append((sent, version(self.box, {"X-User-Group": "beta"})))
            except (OSError, AssertionError):
                self.answers.append((sent, "failed"))

    def since(self, moment: float) -> Counter[str]:
        return Counter(v for sent, v in self.answers if sent > moment)

    def __enter__(self) -> BetaUsers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def ab_config(box: Sandbox, tmp_path: Path, cohort_bake: str) -> Path:
    """The sandbox's config with strategy ab: the beta cohort first, then weights."""
    text = launcher.relconsole_config(
        box.ports, socket_path=box.socket_path, steps=((50, "3s"), (100, "")),
        state_dir=str(tmp_path / "state"), gates=(
            "{metric: error_rate, max: 0.05, failure_limit: 2, inconclusive_limit: 10}",
            "{metric: latency_p99, max: 0.1, max_increase: 0.05, failure_limit: 2, "
            "inconclusive_limit: 10}"))
    path = map_path(box, "beta-users")
    text = text.replace(
        "  strategy: canary\n",
        "  strategy: ab\n  cohorts:\n    beta-users: {header: X-User-Group, values: [beta]}\n")
    cohort_step = f"    - {{cohort: beta-users, bake: {cohort_bake}}}\n"
    text = text.replace("  steps:\n", "  steps:\n" + cohort_step)
    text = text.replace("canary: canary}", f'canary: canary, maps: {{beta-users: "{path}"}}}}')
    assert "strategy: ab" in text and "cohort: beta-users" in text and "maps:" in text
    out = tmp_path / "relconsole.yaml"
    out.write_text(text)
    return out


def wait_for_map(box: Sandbox, wanted: list[tuple[str, str]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while show_map(box, "beta-users") != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"show map never became {wanted}")
        time.sleep(0.2)


def test_headless_ab_release_cohort_then_weights_to_done(box: Sandbox, tmp_path: Path) -> None:
    with BetaUsers(box) as beta:
        run = Headless(ab_config(box, tmp_path, "4s"))
        try:
            wait_for_map(box, [("beta", "canary")])
            routed = time.monotonic()
            assert box.weights()["canary"] == 0  # the cohort step comes before any weight
            assert run.finish(90) == 0, run.output()
            # Promoted: everyone is on the new version, and the cohort's entries are gone,
            # so a later release's canary does not inherit the beta users.
            assert show_map(box, "beta-users") == []
        finally:
            run.close()
            box.runtime(f"clear map {map_path(box, 'beta-users')}")
    # From the cohort step on, every beta user got the canary; at the end, everyone does.
    after = beta.since(routed)
    assert after[CANARY_VERSION] > 50 and set(after) == {CANARY_VERSION}, after
    assert box.weights() == {"stable": 0, "canary": 100}
    assert count(box, None, 10) == {CANARY_VERSION: 10}
    cohort_step = next(e for e in run.events if e["event"] == "step" and e["step"] == 1)
    assert cohort_step["weight"] == 0 and "beta-users" in cohort_step["message"]
    # The gates judged the cohort's canary requests before any weight: the step to 50 %
    # was decided on canary traffic that only the beta users sent.
    to_50 = next(e for e in run.events if e["event"] == "step" and e["weight"] == 50)
    error_gate = next(g for g in to_50["gates"] if g["gate"] == "error_rate")
    assert error_gate["verdict"] == "pass" and error_gate["evidence"]["canary_total"] > 0


def test_headless_ab_fault_in_the_cohort_step_rolls_back_and_empties_the_map(
    box: Sandbox, tmp_path: Path,
) -> None:
    with BetaUsers(box):
        run = Headless(ab_config(box, tmp_path, "60s"))
        try:
            wait_for_map(box, [("beta", "canary")])
            box.knobs("canary", error_rate=0.5)
            assert run.finish(60) == 3, run.output()
        finally:
            run.close()
            box.knobs("canary", error_rate=0)
    assert show_map(box, "beta-users") == []  # HAProxy's own account: the cohort is gone
    assert box.weights() == {"stable": 100, "canary": 0}
    assert count(box, {"X-User-Group": "beta"}, 10) == {STABLE: 10}
    assert any(e["event"] == "rolled_back" for e in run.events)
