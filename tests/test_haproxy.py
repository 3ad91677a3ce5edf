"""The HAProxy traffic provider: weight arithmetic, every runtime-API answer (captured from
HAProxy 2.6), settings, and the provider against a local runtime API that answers the way
HAProxy does. The real HAProxy is in tests/integration/test_sandbox.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relconsole.model import Role
from relconsole.providers.base import ProviderError
from relconsole.providers.haproxy import (
    HAProxyTraffic,
    explain_reply,
    health,
    parse_servers_state,
    parse_settings,
    parse_stat,
    parse_weights,
    share,
    split_answers,
    split_weights,
)

# Answers captured from HAProxy 2.6.12 (Debian bookworm), trimmed to the rows that matter.
STAT_HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,"
    "throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,"
    "check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,"
    "lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,"
    "agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,"
    "agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,"
    "intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,"
    "qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,"
    "need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,"
)
STAT_ROWS = [
    "fe,FRONTEND,,,0,0,9984,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,"
    "0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,",
    "app,stable,0,0,3,5,,0,0,0,,0,,0,0,0,0,DRAIN,90,1,0,1,1,1,2,,1,3,1,,0,,2,0,,0,L7OK,200,1,"
    "0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,3,4,,,,"
    "127.0.0.1:28081,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,90,,,,",
    "app,canary,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,10,1,0,1,1,3,3,,1,3,2,,0,,2,0,,0,L4CON,,0,0,"
    "0,0,0,0,0,,,,0,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,2,"
    "3,0,,,,127.0.0.1:28082,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,10,,,,",
    "app,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,DOWN,0,0,0,,2,1,3,,1,3,0,,0,,1,0,,0,,,,0,0,0,"
    "0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,"
    "0,0,,,,,0,0,0,0,",
    "st,a,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,100,1,0,,,4,,,1,4,1,,0,,2,0,,0,,,,0,0,0,0,0,0,,"
    ",,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,127.0.0.1:28081,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,"
    "0,0,100,,,,",
]
STAT = STAT_HEADER + "\n" + "\n".join(STAT_ROWS) + "\n\n"
SERVERS_STATE = (
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result "
    "srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id "
    "srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr "
    "srv_agent_port\n"
    "3 app 1 stable 127.0.0.1 2 8 90 100 15 15 3 4 6 0 0 0 - 28081 - 0 0 - - 0\n"
    "3 app 2 canary 127.0.0.1 0 1 10 0 1 8 2 0 14 0 0 0 - 28082 - 0 0 - - 0\n\n"
)
UNKNOWN_COMMAND = (
    "Unknown command, but maybe one of the following ones is a better match:\n"
    "  get acl <acl> <value>  : report the patterns matching a sample for an ACL\n"
    "  help [<command>]       : list matching or all commands\n\n"
)


# ----------------------------------------------------------------------------- weights


def test_one_server_a_side_reads_naturally() -> None:
    assert split_weights(10, 1, 1) == (10, 90)
    assert split_weights(50, 1, 1) == (50, 50)
    assert split_weights(0, 1, 1) == (0, 100)
    assert split_weights(100, 1, 1) == (100, 0)


@pytest.mark.parametrize("n_stable", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("n_canary", [1, 2, 3, 5])
def test_the_canary_share_is_the_requested_percent(n_stable: int, n_canary: int) -> None:
    for percent in range(101):
        try:
            wc, ws = split_weights(percent, n_stable, n_canary)
        except ProviderError:
            # Only where 0..256 truly cannot say it (e.g. 1 % with 5 canaries, 1 stable).
            assert max(n_stable, n_canary) > 3 and percent in (1, 2, 98, 99)
            continue
        assert 0 <= wc <= 256 and 0 <= ws <= 256
        assert share([wc] * n_canary, [ws] * n_stable) == percent, (percent, wc, ws)


def test_a_share_haproxy_cannot_express_is_refused() -> None:
    with pytest.raises(ProviderError, match="cannot be expressed"):
        split_weights(1, 1, 20)  # 20 canaries at weight 1 already outweigh 1 % of 256
    with pytest.raises(ProviderError, match="outside"):
        split_weights(101, 1, 1)


def test_share_counts_only_what_takes_traffic() -> None:
    assert share([0], [0]) is None
    assert share([10, 10], [80, 0]) == 20


# ----------------------------------------------------------------------------- replies


def test_get_weight_answers_are_parsed_in_order() -> None:
    reply = "10 (initial 1)\n\n90 (initial 100)\n\n"
    assert parse_weights(reply, ["canary", "stable"], "app") == {"canary": 10, "stable": 90}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("No such server.\n\n90 (initial 100)\n\n", "backend app has no server 'canary'"),
        ("No such backend.\n\nNo such backend.\n\n", "no backend named 'app'"),
        ("Permission denied\n\nPermission denied\n\n", "level admin"),
        (UNKNOWN_COMMAND, "does not know `get weight`"),
        ("", "unexpected answer to get weight: (empty)"),
        ("10 (initial 1)\n\n", "unexpected answer"),
        ("ten (initial 1)\n\n90 (initial 100)\n\n", "failed: ten (initial 1)"),
        ("\x00\xff garbage\n\nmore\n\n", "garbage"),
    ],
)
def test_bad_get_weight_answers_are_clear_errors(reply: str, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_weights(reply, ["canary", "stable"], "app")
    assert message in str(caught.value)
    assert str(caught.value).startswith("haproxy: ")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("Permission denied\n\n", "permission denied"),
        ("No such backend.\n\n", "no backend named 'app'"),
        ("No such server.\n\n", "backend app has no server 'canary'"),
        ("Absolute weight can only be between 0 and 256 inclusive.\n\n", "between 0 and 256"),
        ("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n",
         "static balance algorithm"),
        (UNKNOWN_COMMAND, "does not know `set weight`"),
    ],
)
def test_set_answers_are_explained(reply: str, message: str) -> None:
    error = explain_reply("set weight app/canary 10", reply, "app")
    assert message in str(error)


@pytest.mark.parametrize(
    ("reply", "count", "answers"),
    [  # captured from HAProxy 2.6 for `a; b` and `a; b; c` lines
        ("\nNo such server.\n\n", 2, ["", "No such server."]),
        ("No such server.\n\n\n", 2, ["No such server.", ""]),
        ("\n\n", 2, ["", ""]),
        ("\n'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n\n", 3,
         ["", "'set server <srv> state' expects 'ready', 'drain' and 'maint'.", ""]),
        ("\n" + UNKNOWN_COMMAND + "\n", 3, ["", UNKNOWN_COMMAND.strip("\n"), ""]),
    ],
)
def test_answers_to_a_command_line_are_split_per_command(
    reply: str, count: int, answers: list[str]
) -> None:
    assert split_answers(reply, count) == answers


def test_show_stat_is_read_by_column_name() -> None:
    rows = parse_stat(STAT, "app")
    assert set(rows) == {"stable", "canary"}
    assert rows["stable"]["status"] == "DRAIN" and rows["stable"]["scur"] == "3"
    assert rows["canary"]["check_status"] == "L4CON"
    assert parse_stat(STAT, "st")["a"]["status"] == "no check"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("", "empty answer"),
        ("Permission denied\n\n", "permission denied"),
        ("# a,b,c\nx,y,z\n\n", "no pxname column"),
        ("<html>hello</html>\n", "failed"),
    ],
)
def test_bad_show_stat_answers_are_errors(reply: str, message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        parse_stat(reply, "app")


def test_show_servers_state_gives_the_admin_state() -> None:
    assert parse_servers_state(SERVERS_STATE, "app") == {"stable": 8, "canary": 1}
    with pytest.raises(ProviderError, match="no backend named"):
        parse_servers_state("Can't find backend.\n\n", "app")
    with pytest.raises(ProviderError, match="unexpected"):
        parse_servers_state("1\n# be_id be_name srv_name\n3 app s\n\n", "app")
    bad_row = SERVERS_STATE.replace("3 app 1 stable 127.0.0.1 2 8", "3 app 1 stable 127.0.0.1 2 x")
    with pytest.raises(ProviderError, match="unexpected `show servers state` row"):
        parse_servers_state(bad_row, "app")


def test_health_from_show_stat() -> None:
    rows = parse_stat(STAT, "app")
    stable = health("stable", Role.BASELINE, rows["stable"])
    assert stable.up and stable.detail == "DRAIN L7OK 3 sess"
    canary = health("canary", Role.CANARY, rows["canary"])
    assert not canary.up and "L4CON" in canary.detail
    assert health("x", Role.CANARY, {"status": "UP 1/3", "scur": "0"}).up
    assert not health("x", Role.CANARY, {"status": "MAINT", "scur": "0"}).up
    assert not health("x", Role.CANARY, None).up


# ----------------------------------------------------------------------------- settings


BASE = {"type": "haproxy", "socket": "/run/haproxy/admin.sock", "backend": "app",
        "stable": "stable", "canary": "canary"}


def settings(strategy: str = "canary", call_timeout: float = 5.0, **changes: Any):
    raw = {**BASE, **changes}
    return parse_settings({k: v for k, v in raw.items() if v is not None},
                          strategy=strategy, call_timeout=call_timeout)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"socket": None}, "exactly one of socket"),
        ({"address": "127.0.0.1:9999"}, "exactly one of socket"),
        ({"socket": None, "address": "nohost"}, "address must be host:port"),
        ({"socket": None, "address": "h:99999"}, "address must be host:port"),
        ({"backend": None}, "'backend' is required"),
        ({"backend": "app; disable frontend fe"}, "not a valid HAProxy backend name"),
        ({"canary": "canary; set weight app/stable 0"}, "is not a server name"),
        ({"canary": []}, "non-empty list"),
        ({"canary": [1]}, "is not a server name"),
        ({"stable": ["a", "a"]}, "listed twice"),
        ({"stable": "x", "canary": ["x", "y"]}, "both stable and canary"),
        ({"stable": None}, "'stable' is required"),
        ({"timeout": "5s"}, "shorter than release.call_timeout"),
        ({"sockt": "/x"}, "did you mean 'socket'"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        settings(**changes)
    assert message in str(caught.value)


def test_settings_accept_lists_and_tcp() -> None:
    s = settings(socket=None, address="[::1]:9999", stable=["s1", "s2"], canary="c1")
    assert s.address == ("::1", 9999) and s.stable == ("s1", "s2") and s.canary == ("c1",)


# ----------------------------------------------------------------------------- a runtime API


@dataclass
class Server:
    weight: int
    initial: int
    admin: int = 0  # 0 ready, 1 maint, 8 drain
    scur: int = 0
    status: str = "UP"


@dataclass
class FakeRuntimeAPI:
    """Answers one command line per connection, as HAProxy 2.6 does (see captures above)."""

    path: Path
    servers: dict[str, Server] = field(default_factory=dict)
    level: str = "admin"
    mode: str = "normal"  # normal | garbage | silent
    lines: list[str] = field(default_factory=list)
    drain_per_stat: int = 0  # sessions that end between two `show stat`s

    def one(self, command: str) -> str:
        words = command.split()
        if words[:2] == ["get", "weight"] and len(words) == 3:
            backend, _, name = words[2].partition("/")
            if backend != "app":
                return "No such backend.\n"
            if name not in self.servers:
                return "No such server.\n"
            s = self.servers[name]
            return f"{s.weight} (initial {s.initial})\n"
        if words[:2] == ["set", "weight"] and len(words) == 4:
            if self.level != "admin":
                return "Permission denied\n"
            _, _, name = words[2].partition("/")
            if name not in self.servers:
                return "No such server.\n"
            self.servers[name].weight = int(words[3])
            return ""
        if words[:2] == ["set", "server"] and words[3:4] == ["state"]:
            if self.level != "admin":
                return "Permission denied\n"
            _, _, name = words[2].partition("/")
            if name not in self.servers:
                return "No such server.\n"
            self.servers[name].admin = {"ready": 0, "drain": 8, "maint": 1}[words[4]]
            return ""
        if words[:2] == ["show", "stat"]:
            rows = [STAT_HEADER]
            for name, s in self.servers.items():
                if s.admin == 8 and s.scur:
                    s.scur = max(0, s.scur - self.drain_per_stat)
                status = {0: s.status, 8: "DRAIN", 1: "MAINT"}[s.admin]
                rows.append(f"app,{name},0,0,{s.scur},0,,0,0,0,,0,,0,0,0,0,{status},"
                            f"{s.weight},1,0,0,0,1,0,,1,3,1,,0,,2,0,,0,L7OK,200,1")
            return "\n".join(rows) + "\n"
        if words[:3] == ["show", "servers", "state"]:
            head = SERVERS_STATE.splitlines()[:2]
            rows = [f"3 app {i} {name} 127.0.0.1 2 {s.admin} {s.weight} {s.initial} 0 6 3 4 "
                    "6 0 0 0 - 80 - 0 0 - - 0" for i, (name, s) in enumerate(self.servers.items())]
            return "\n".join(head + rows) + "\n"
        return UNKNOWN_COMMAND.rstrip("\n") + "\n"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().strip()
        self.lines.append(line)
        if self.mode == "silent":
            await asyncio.sleep(10)
        elif self.mode == "garbage":
            writer.write(b"\x00hello, this is not HAProxy\n")
        else:
            writer.write("".join(self.one(c.strip()) + "\n" for c in line.split(";")).encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[FakeRuntimeAPI]:
    fake = FakeRuntimeAPI(tmp_path / "admin.sock", {
        "stable": Server(100, 100), "canary": Server(0, 0),
    })
    server = await asyncio.start_unix_server(fake.handle, path=str(fake.path))
    yield fake
    server.close()
    await server.wait_closed()


def traffic(fake: FakeRuntimeAPI, strategy: str = "canary", **changes: Any) -> HAProxyTraffic:
    raw = {**BASE, "socket": str(fake.path), **changes}
    call_timeout = float(raw.pop("call_timeout", 5.0))
    return HAProxyTraffic(parse_settings(raw, strategy=strategy, call_timeout=call_timeout))


async def test_set_weight_sets_both_sides_in_one_line_and_reads_back(
    api: FakeRuntimeAPI,
) -> None:
    t = traffic(api)
    assert (await t.read()).canary_weight == 0
    await t.set_weight(25, reason="step 2")
    assert api.servers["canary"].weight == 25 and api.servers["stable"].weight == 75
    assert "set weight app/canary 25; set weight app/stable 75" in api.lines
    assert api.lines[-1] == "get weight app/canary; get weight app/stable"  # read back
    state = await t.read()
    assert state.canary_weight == 25
    assert state.health_line() == "canary 1/1 up · stable 1/1 up"


async def test_several_servers_a_side(api: FakeRuntimeAPI) -> None:
    api.servers = {n: Server(100, 100) for n in ("s1", "s2", "s3")} | {
        n: Server(0, 0) for n in ("c1", "c2")}
    t = traffic(api, stable=["s1", "s2", "s3"], canary=["c1", "c2"])
    await t.set_weight(10, reason="r")
    weights = {n: s.weight for n, s in api.servers.items()}
    canary = weights["c1"] + weights["c2"]
    assert canary / sum(weights.values()) == pytest.approx(0.10)
    state = await t.read()
    assert state.canary_weight == 10
    assert state.health_line() == "canary 2/2 up · stable 3/3 up"


async def test_a_drained_server_takes_no_share(api: FakeRuntimeAPI) -> None:
    t = traffic(api)
    await t.set_weight(50, reason="r")
    api.servers["stable"].admin = 8  # someone drained the stable side by hand
    assert (await t.read()).canary_weight == 100
    api.servers["canary"].admin = 1
    with pytest.raises(ProviderError, match="no server of backend app can take traffic"):
        await t.read()


async def test_health_is_reported_not_counted(api: FakeRuntimeAPI) -> None:
    t = traffic(api)
    await t.set_weight(10, reason="r")
    api.servers["canary"].status = "DOWN"
    state = await t.read()
    assert state.canary_weight == 10
    assert state.health_line() == "canary 0/1 up · stable 1/1 up"


async def test_an_unknown_server_fails_by_name_before_anything_changes(
    api: FakeRuntimeAPI,
) -> None:
    t = traffic(api, canary="canary2")
    with pytest.raises(ProviderError, match="backend app has no server 'canary2'"):
        await t.set_weight(10, reason="r")
    assert not any(line.startswith("set ") for line in api.lines)
    assert api.servers["stable"].weight == 100


async def test_an_operator_level_socket_is_permission_denied(api: FakeRuntimeAPI) -> None:
    api.level = "operator"
    t = traffic(api)
    assert (await t.read()).canary_weight == 0  # reading is allowed
    with pytest.raises(ProviderError, match="level admin"):
        await t.set_weight(10, reason="r")


async def test_garbage_on_the_socket_is_a_clear_error(api: FakeRuntimeAPI) -> None:
    api.mode = "garbage"
    with pytest.raises(ProviderError, match=r"haproxy: .*not HAProxy"):
        await traffic(api).read()


async def test_an_answer_cut_mid_line_is_an_error_not_a_reading(tmp_path: Path) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"20 (initial 0)\n\n80 (in")  # the connection closes mid-answer
        await writer.drain()
        writer.close()

    path = tmp_path / "cut.sock"
    server = await asyncio.start_unix_server(cut, path=str(path))
    try:
        t = HAProxyTraffic(parse_settings({**BASE, "socket": str(path)}, strategy="canary",
                                          call_timeout=5.0))
        with pytest.raises(ProviderError,
                           match=r"answer to `get weight app/canary` was cut short"):
            await t.weights()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_silent_socket_times_out(api: FakeRuntimeAPI) -> None:
    api.mode = "silent"
    t = traffic(api, timeout="200ms")
    started = time.monotonic()
    with pytest.raises(ProviderError, match=r"no answer from .* within 0.2s"):
        await t.read()
    assert time.monotonic() - started < 1.0


async def test_no_socket_and_refused_connections(tmp_path: Path) -> None:
    missing = HAProxyTraffic(parse_settings({**BASE, "socket": str(tmp_path / "gone.sock")},
                                            strategy="canary", call_timeout=5.0))
    with pytest.raises(ProviderError, match=r"no socket at .*gone.sock.*level admin"):
        await missing.read()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tcp = {k: v for k, v in BASE.items() if k != "socket"} | {"address": f"127.0.0.1:{port}"}
    refused = HAProxyTraffic(parse_settings(tcp, strategy="canary", call_timeout=5.0))
    with pytest.raises(ProviderError, match=f"connection refused at 127.0.0.1:{port}"):
        await refused.read()


async def test_the_failing_command_of_a_line_is_the_one_named(api: FakeRuntimeAPI) -> None:
    original = api.one

    def no_stable(command: str) -> str:
        if command.startswith("set weight app/stable"):
            return "No such server.\n"  # vanished between the check and the change
        return original(command)

    api.one = no_stable  # type: ignore[method-assign]
    with pytest.raises(ProviderError, match="backend app has no server 'stable'"):
        await traffic(api).set_weight(30, reason="r")


async def test_weight_not_applied_is_caught_by_the_read_back(api: FakeRuntimeAPI) -> None:
    original = api.one

    def stubborn(command: str) -> str:
        if command.startswith("set weight app/canary"):
            return ""  # says yes, does nothing
        return original(command)

    api.one = stubborn  # type: ignore[method-assign]
    with pytest.raises(ProviderError, match="canary reports 0, asked 30"):
        await traffic(api).set_weight(30, reason="r")


# Blue-green (preview, switch with drain, rollback): tests/test_haproxy_blue_green.py.
