"""A/B cohorts on HAProxy (relconsole/providers/haproxy_cohorts.py) against a local runtime
API that answers map commands the way HAProxy 2.6 does (answers captured from it). The
real HAProxy, with requests counted per version, is tests/integration/test_ab_cohorts.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relconsole.clock import FastClock
from relconsole.model import Cohort, ReleasePlan, Route, Step
from relconsole.providers.base import BuildContext, ProviderError, routes
from relconsole.providers.haproxy import build_traffic
from relconsole.providers.haproxy_cohorts import (
    HAProxyCohorts,
    build_cohort_traffic,
    cohort_config_lines,
    parse_map,
)
from tests.test_haproxy import FakeRuntimeAPI, Server

BETA = Cohort("beta-users", header="X-User-Group", values=("beta", "internal"))
STICKY10 = Cohort("sticky-10", hash="X-User-Id", percent=10)
STICKY25 = Cohort("sticky-25", hash="X-User-Id", percent=25)
COOKIE = Cohort("by-cookie", cookie="rc_cohort", values=("canary",))
COHORTS = (BETA, STICKY10, STICKY25, COOKIE)
MAPS = {"beta-users": "/etc/haproxy/beta.map", "sticky-10": "/etc/haproxy/s10.map",
        "sticky-25": "/etc/haproxy/s25.map", "by-cookie": "/etc/haproxy/cookie.map"}
UNKNOWN_MAP = "Unknown map identifier. Please use #<id> or <file>.\n"


def plan(cohorts: tuple[Cohort, ...] = COHORTS, steps: tuple[Step, ...] | None = None
         ) -> ReleasePlan:
    if steps is None:
        steps = (Step(0, 60, route=Route(cohorts=("beta-users",))),
                 Step(0, 60, route=Route(cohorts=("beta-users", "sticky-10"))),
                 Step(10, 60, route=Route(cohorts=("beta-users", "sticky-10"))),
                 Step(100, route=Route(cohorts=("beta-users", "sticky-10"))))
    return ReleasePlan(service="checkout", version="2.3.0", environment="prod",
                       strategy="ab", steps=steps, cohorts=cohorts)


def ctx(p: ReleasePlan | None = None) -> BuildContext:
    return BuildContext(plan=p or plan(), clock=FastClock())


@dataclass
class MapsAPI(FakeRuntimeAPI):
    """FakeRuntimeAPI plus the map commands: `show/add/del/set/clear map`."""

    maps: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    refs: itertools.count = field(default_factory=lambda: itertools.count(0x55D0A000, 0xE0))

    def one(self, command: str) -> str:
        words = command.split()
        if words[1:2] != ["map"]:
            return super().one(command)
        verb, path = words[0], words[2] if len(words) > 2 else ""
        if path not in self.maps:
            return UNKNOWN_MAP
        entries = self.maps[path]
        if verb == "show":
            return "".join(f"{ref} {key} {value}\n" for ref, key, value in entries)
        if verb == "add":
            if len(words) < 5:
                return ("'add map' expects three parameters (map identifier, key and value) or "
                        "one parameter (map identifier) and a payload\n")
            entries.append((f"0x{next(self.refs):x}", words[3], words[4]))  # duplicates kept
            return ""
        if verb == "del":
            target = words[3]
            keep = [e for e in entries if (e[0] != target[1:] if target.startswith("#")
                                           else e[1] != target)]
            if len(keep) == len(entries):
                return "Key not found.\n"
            self.maps[path] = keep
            return ""
        if verb == "clear":
            self.maps[path] = []
            return ""
        return super().one(command)

    def keys(self, cohort: str) -> list[str]:
        return [key for _, key, _ in self.maps[MAPS[cohort]]]

    def reload(self) -> None:
        """What a HAProxy reload does to runtime map entries: the (empty) files again."""
        for path in self.maps:
            self.maps[path] = []


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[MapsAPI]:
    fake = MapsAPI(tmp_path / "admin.sock", {"stable": Server(100, 100), "canary": Server(0, 0)},
                   maps={path: [] for path in MAPS.values()})
    server = await asyncio.start_unix_server(fake.handle, path=str(fake.path))
    yield fake
    server.close()
    await server.wait_closed()


def raw(fake: MapsAPI | None = None, **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "haproxy", "socket": str(fake.path) if fake else "/x.sock",
                           "backend": "app", "stable": "stable", "canary": "canary",
                           "maps": dict(MAPS)}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def provider(fake: MapsAPI, p: ReleasePlan | None = None, **changes: Any) -> HAProxyCohorts:
    return build_cohort_traffic(raw(fake, **changes), ctx(p))


BETA_ON = Route(cohorts=("beta-users",))
BOTH_ON = Route(cohorts=("beta-users", "sticky-10"))


# ----------------------------------------------------------------------------- settings


def test_strategy_ab_on_haproxy_builds_the_cohort_provider() -> None:
    built = build_traffic(raw(), ctx())
    assert isinstance(built, HAProxyCohorts) and routes(built)


def test_a_cohort_a_step_uses_without_a_map_names_it_and_the_haproxy_cfg_lines() -> None:
    maps = {k: v for k, v in MAPS.items() if k != "sticky-10"}
    with pytest.raises(ProviderError) as caught:
        build_cohort_traffic(raw(maps=maps), ctx())
    text = str(caught.value)
    assert "cohort sticky-10 (10% of users by X-User-Id (sticky hash)) has no map file" in text
    assert "maps: {sticky-10: /etc/haproxy/rc-sticky-10.map}" in text
    assert ("`acl rc_sticky_10 req.hdr(X-User-Id),crc32,mod(100),"
            "map(/etc/haproxy/rc-sticky-10.map) -m found`") in text
    assert "`use-server canary if rc_sticky_10`" in text and "in backend app" in text


def test_a_cohort_no_step_uses_needs_no_map() -> None:
    maps = {"beta-users": MAPS["beta-users"]}
    only_beta = plan(steps=(Step(0, 60, route=BETA_ON), Step(100)))
    built = build_cohort_traffic(raw(maps=maps), ctx(only_beta))
    assert [m.cohort.name for m in built.settings.maps] == ["beta-users"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"maps": {**MAPS, "beta-user": "/x.map"}},
         "maps: 'beta-user' (did you mean 'beta-users'?) is not a cohort of release.cohorts"),
        ({"maps": {**MAPS, "sticky-25": MAPS["beta-users"]}},
         "cohorts beta-users and sticky-25 both use /etc/haproxy/beta.map"),
        ({"maps": {**MAPS, "beta-users": "/etc/haproxy/my beta.map"}},
         "must be a path without spaces"),
        ({"maps": {**MAPS, "beta-users": "/x.map; clear map /y.map"}},
         "must be a path without spaces"),
        ({"maps": ["/etc/haproxy/beta.map"]}, "'maps' must be a mapping of cohort names"),
        ({"map": MAPS}, "unknown setting 'map' (did you mean 'maps'?)"),
        ({"drain_timeout": "30s"}, "'drain_timeout' is for release.strategy: blue-green only"),
        ({"backend": None}, "'backend' is required"),
    ],
)
def test_bad_cohort_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        build_cohort_traffic(raw(**changes), ctx())
    assert message in str(caught.value)
    assert str(caught.value).startswith("haproxy: ")


def test_a_cohort_value_that_cannot_be_a_map_key_is_refused() -> None:
    spaced = (Cohort("beta-users", header="X-User-Group", values=("beta testers",)),)
    p = plan(spaced, (Step(0, 60, route=BETA_ON), Step(100)))
    with pytest.raises(ProviderError, match="cohort beta-users: the value 'beta testers' "
                                            "cannot be a HAProxy map key"):
        build_cohort_traffic(raw(maps={"beta-users": "/b.map"}), ctx(p))


def test_the_documented_haproxy_cfg_lines_per_cohort_kind() -> None:
    assert cohort_config_lines(BETA, "/b.map") == [
        "acl rc_beta_users req.hdr(X-User-Group),map(/b.map) -m found",
        "use-server canary if rc_beta_users"]
    assert cohort_config_lines(COOKIE, "/c.map", "green")[0] == \
        "acl rc_by_cookie req.cook(rc_cohort),map(/c.map) -m found"
    assert cohort_config_lines(STICKY10, "/s.map")[0] == \
        "acl rc_sticky_10 req.hdr(X-User-Id),crc32,mod(100),map(/s.map) -m found"


def test_show_map_answers_are_parsed_and_garbage_is_an_error() -> None:
    reply = "0x7f0e4c046df0 beta canary\n0x7f0e4c046e90 internal canary\n"
    assert parse_map(reply, "/b.map") == [("0x7f0e4c046df0", "beta", "canary"),
                                          ("0x7f0e4c046e90", "internal", "canary")]
    assert parse_map("", "/b.map") == []
    with pytest.raises(ProviderError, match=r"HAProxy has no map /b\.map"):
        parse_map(UNKNOWN_MAP, "/b.map")
    with pytest.raises(ProviderError, match="failed"):
        parse_map("<html>hello</html>\n", "/b.map")


# ----------------------------------------------------------------------------- moves


async def test_a_cohort_step_writes_one_entry_per_value_at_weight_zero(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(0, BETA_ON, reason="cohort step")
    assert api.maps[MAPS["beta-users"]][0][1:] == ("beta", "canary")
    assert api.keys("beta-users") == ["beta", "internal"]
    assert api.keys("sticky-10") == [] and api.servers["canary"].weight == 0
    # Maps and weights on one command line: HAProxy applies the step whole.
    assert ("add map /etc/haproxy/beta.map beta canary; add map /etc/haproxy/beta.map "
            "internal canary; set weight app/canary 0; set weight app/stable 100") in api.lines
    state = await t.read()
    assert state.canary_weight == 0 and state.route.same(BETA_ON)
    assert "2 map entries route cohort beta-users to the canary" in state.note
    assert "a HAProxy reload drops them" in state.note


async def test_a_sticky_hash_writes_buckets_and_a_larger_share_keeps_them(
    api: MapsAPI,
) -> None:
    t = provider(api)
    await t.set_route(0, Route(cohorts=("beta-users", "sticky-10")), reason="r")
    assert api.keys("sticky-10") == [str(b) for b in range(10)]
    await t.set_route(20, Route(cohorts=("beta-users", "sticky-10", "sticky-25")), reason="r")
    assert api.keys("sticky-25") == [str(b) for b in range(25)]
    assert set(api.keys("sticky-10")) <= set(api.keys("sticky-25"))
    assert api.servers["canary"].weight == 20 and api.servers["stable"].weight == 80
    state = await t.read()
    assert state.canary_weight == 20
    assert set(state.route.cohorts) == {"beta-users", "sticky-10", "sticky-25"}


async def test_applying_the_same_step_twice_adds_no_duplicates(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(0, BOTH_ON, reason="r")
    before = {path: list(entries) for path, entries in api.maps.items()}
    await t.set_route(10, BOTH_ON, reason="r")
    assert api.maps == before  # HAProxy would have kept a second "beta canary"
    assert not any("add map" in line for line in api.lines[-3:])


async def test_set_weight_keeps_the_cohorts(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(0, BETA_ON, reason="r")
    await t.set_weight(50, reason="promote half")
    state = await t.read()
    assert state.canary_weight == 50 and state.route.same(BETA_ON)
    fresh = provider(api)  # another console: it goes by what the maps hold
    await fresh.set_weight(60, reason="r")
    assert (await fresh.read()).route.same(BETA_ON) and api.keys("beta-users")


async def test_rollback_removes_exactly_the_entries_relconsole_wrote(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(10, BOTH_ON, reason="r")
    await t.set_route(0, Route(), reason="gate failed")
    assert all(entries == [] for entries in api.maps.values())
    assert api.servers["canary"].weight == 0 and api.servers["stable"].weight == 100
    state = await t.read()
    assert state.canary_weight == 0 and not state.route and state.note == ""


async def test_a_forward_move_with_a_foreign_entry_changes_nothing(api: MapsAPI) -> None:
    api.maps[MAPS["beta-users"]].append(("0x1", "qa", "canary"))  # written by hand
    t = provider(api)
    with pytest.raises(ProviderError) as caught:
        await t.set_route(0, BETA_ON, reason="r")
    assert ("nothing changed: map /etc/haproxy/beta.map (cohort beta-users) holds entries "
            "relconsole did not write: 'qa canary'") in str(caught.value)
    assert "del map /etc/haproxy/beta.map <key>" in str(caught.value)
    assert not any(line.startswith(("add ", "set ")) for line in api.lines)
    with pytest.raises(ProviderError, match="did not write: 'qa canary'"):
        await t.read()  # reported on every read, not ignored


async def test_rollback_keeps_a_foreign_entry_and_is_not_verified(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(10, BETA_ON, reason="r")
    # Someone maps the same key elsewhere, and another key, by hand.
    api.maps[MAPS["beta-users"]] += [("0x2", "beta", "green"), ("0x3", "qa", "canary")]
    with pytest.raises(ProviderError) as caught:
        await t.set_route(0, Route(), reason="gate failed")
    assert "rolled back what relconsole writes, but not verified" in str(caught.value)
    assert "'beta green', 'qa canary'" in str(caught.value)
    # Ours went (by reference where a foreign entry shares its key), theirs stayed.
    assert [(k, v) for _, k, v in api.maps[MAPS["beta-users"]]] == [
        ("beta", "green"), ("qa", "canary")]
    assert any("del map /etc/haproxy/beta.map #0x" in line for line in api.lines)
    assert api.servers["canary"].weight == 0


async def test_entries_lost_at_a_reload_are_reported(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(0, BETA_ON, reason="r")
    api.reload()
    with pytest.raises(ProviderError) as caught:
        await t.read()
    assert "cohort beta-users: the entries relconsole added to /etc/haproxy/beta.map are " \
           "gone" in str(caught.value)
    assert "lost when HAProxy reloads" in str(caught.value)
    await t.set_route(0, BETA_ON, reason="apply again")  # the step again puts them back
    assert (await t.read()).route.same(BETA_ON)


async def test_a_half_there_cohort_is_reported(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(0, BOTH_ON, reason="r")
    api.maps[MAPS["sticky-10"]] = api.maps[MAPS["sticky-10"]][:7]
    with pytest.raises(ProviderError, match=r"cohort sticky-10 is half there: 3 of 10 entries "
                                            r"missing from /etc/haproxy/s10.map \(7, 8, 9\)"):
        await t.read()


async def test_entries_relconsole_did_not_put_there_are_reported(api: MapsAPI) -> None:
    t = provider(api)
    await t.set_route(0, BETA_ON, reason="r")
    api.maps[MAPS["by-cookie"]].append(("0x9", "canary", "canary"))
    with pytest.raises(ProviderError, match=r"cohort by-cookie is routed to the canary .* but "
                                            r"relconsole did not put them there"):
        await t.read()


async def test_a_map_haproxy_cfg_does_not_read_is_named_before_anything_changes(
    api: MapsAPI,
) -> None:
    del api.maps[MAPS["sticky-10"]]
    t = provider(api)
    with pytest.raises(ProviderError) as caught:
        await t.set_route(0, BETA_ON, reason="r")
    assert "HAProxy has no map /etc/haproxy/s10.map (cohort sticky-10)" in str(caught.value)
    assert ("add once in backend app: `acl rc_sticky_10 req.hdr(X-User-Id),crc32,mod(100),"
            "map(/etc/haproxy/s10.map) -m found` and `use-server canary if rc_sticky_10`"
            ) in str(caught.value)
    assert not any(line.startswith(("add ", "set ")) for line in api.lines)


async def test_an_entry_haproxy_does_not_keep_fails_the_read_back(api: MapsAPI) -> None:
    original = api.one

    def forgetful(command: str) -> str:
        if command.startswith("add map /etc/haproxy/beta.map internal"):
            return ""  # says yes, keeps nothing
        return original(command)

    api.one = forgetful  # type: ignore[method-assign]
    with pytest.raises(ProviderError, match=r"cohort beta-users: 1 of 2 entries missing from "
                                            r"/etc/haproxy/beta\.map after `add map`"):
        await provider(api).set_route(0, BETA_ON, reason="r")


async def test_a_weight_not_applied_fails_the_read_back(api: MapsAPI) -> None:
    original = api.one

    def stubborn(command: str) -> str:
        return "" if command.startswith("set weight app/canary") else original(command)

    api.one = stubborn  # type: ignore[method-assign]
    with pytest.raises(ProviderError, match="canary reports 0, asked 10"):
        await provider(api).set_route(10, BETA_ON, reason="r")


async def test_routes_the_plan_cannot_do_are_refused(api: MapsAPI) -> None:
    t = provider(api)
    with pytest.raises(ProviderError, match="no mirror, no batches"):
        await t.set_route(0, Route(mirror=20), reason="r")
    p = plan(steps=(Step(0, 60, route=BETA_ON), Step(100)))
    only_beta = provider(api, p, maps={"beta-users": MAPS["beta-users"]})
    with pytest.raises(ProviderError, match="cohort sticky-10 has no map file"):
        await only_beta.set_route(0, BOTH_ON, reason="r")
