"""Command line: argument parsing and exit codes; builds everything below.

Exit codes (`ExitCode`, docs/design.md): 0 success, 1 internal error, 2 bad usage or
config, 3 rolled back, 4 left paused for a human, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import json
import os
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from relconsole import __version__, units
from relconsole.clock import SystemClock, clock_text
from relconsole.config import ConfigError, ConfigProblems, LoadedConfig, load_config
from relconsole.exit_codes import ExitCode
from relconsole.handoff import Handoff
from relconsole.headless import format_value, run_headless, silence
from relconsole.model import Mode

if TYPE_CHECKING:
    from relconsole.model import Flag

DEFAULT_CONFIG = "relconsole.yaml"


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code attached."""

    def __init__(self, message: str, code: int = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relconsole",
        description="A terminal release console: canary, gates, flags, rollback.",
    )
    parser.add_argument("--version", action="version", version=f"relconsole {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                       help=f"release config file (default ./{DEFAULT_CONFIG})")
        p.add_argument("--state-dir", type=Path, default=None,
                       help="where journals and leases live (default: the user state dir)")

    def with_ui(p: argparse.ArgumentParser) -> None:
        p.add_argument("--watch", action="store_true", help="watch only: change nothing")
        p.add_argument("--headless", action="store_true",
                       help="no TUI: follow the plan, one line per event")
        p.add_argument("--json", action="store_true", help="headless: one JSON object per event")
        p.add_argument("--theme", default=None,
                       help="dark, light, high-contrast or ansi (default: config ui.theme)")
        p.add_argument("--no-mouse", action="store_true",
                       help="no mouse reporting (less traffic on slow SSH links)")

    from relconsole.providers.sim import SCENARIOS

    demo = sub.add_parser("demo", help="the console on the built-in simulator")
    demo.add_argument("--scenario", default="bad-canary", choices=sorted(SCENARIOS),
                      help="what the simulated canary does (default bad-canary)")
    demo.add_argument("--speed", type=float, default=5.0,
                      help="run simulated time this many times faster (default 5)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--manual", action="store_true",
                      help="no automatic advance: drive the steps with the keys")
    demo.add_argument("--state-dir", type=Path, default=None)
    with_ui(demo)

    def with_take_over(p: argparse.ArgumentParser) -> None:
        p.add_argument("--take-over", action="store_true",
                       help="take the lease from the console that drives (needs "
                            "--take-over-reason; journalled)")
        p.add_argument("--take-over-reason", default="", metavar="TEXT",
                       help="why you take the release from its driver (journalled as the "
                            "take-over's reason, never as the action's)")

    # A console that quits mid-release hands it to `demo --headless --take-over`.
    with_take_over(demo)
    demo.add_argument("--reason", default="", help="why (with --take-over)")

    run = sub.add_parser("run", help="the console attached to the release in a config file")
    with_config(run)
    with_ui(run)
    with_take_over(run)
    run.add_argument("--reason", default="",
                     help="why (with --take-over, --again or --override-window)")
    run.add_argument("--at", default=None, metavar="TIME",
                     help="wait (with a countdown) and start then: HH:MM in release.timezone "
                          "(its next occurrence), 2026-12-02T14:00, or +10m")
    run.add_argument("--override-window", action="store_true",
                     help="start and advance outside the deployment window or a freeze "
                          "(needs --reason; journalled as `window.override`)")
    run.add_argument("--again", action="store_true",
                     help="after a rollback (or a promotion): start a new attempt of the same "
                          "release at the first step (needs --reason; journalled as `restart`)")

    check = sub.add_parser("check", help="validate the config and reach every provider")
    with_config(check)
    check.add_argument("--preflight", action="store_true",
                       help="also: baseline healthy now, canary up, flags exist, "
                            "dependencies answer, capacity, window (exit 0 only if all pass)")

    plan = sub.add_parser("plan", help="the deployment plan: risk, checklist, steps, "
                                       "rollback, monitoring, flags, communication")
    with_config(plan)
    plan.add_argument("--format", choices=("md", "json"), default="md")
    plan.add_argument("--announce", action="store_true",
                      help="also send the plan to the config's notify: targets (event "
                           "'announced'); exit 1 if one could not be reached")

    status = sub.add_parser("status", help="one snapshot of the release and its gates")
    with_config(status)
    status.add_argument("--json", action="store_true")

    for name, text in (
        ("advance", "advance one step"),
        ("pause", "pause the release where it stands"),
        ("resume", "resume a paused release"),
        ("promote", "promote the canary to 100%%"),
        ("rollback", "roll the canary back to 0%%"),
    ):
        p = sub.add_parser(name, help=f"{text}, journalled and verified")
        with_config(p)
        with_take_over(p)
        p.add_argument("--reason", required=name == "rollback", default="",
                       help="why (journalled; required for rollback)")
        if name in ("advance", "promote"):
            p.add_argument("--override-window", action="store_true",
                           help="start outside the deployment window or a freeze (needs "
                                "--reason; journalled as `window.override`)")
        if name == "advance":
            p.add_argument("--skip-bake", action="store_true",
                           help="advance although the step's bake is not over, or a "
                                "gate judged on counts still needs more data (needs "
                                "--reason; journalled as an early advance; never past a "
                                "failing gate or missing data, nor to 100%% before "
                                "the gates pass)")

    flags = sub.add_parser("flags", help="list the release's feature flags")
    with_config(flags)
    flags.add_argument("--json", action="store_true")
    flags.add_argument("--audit", action="store_true",
                       help="report stale, expired, unowned and misnamed flags (exit 1 if any)")

    flag = sub.add_parser("flag", help="change one flag, journalled and verified")
    flag_sub = flag.add_subparsers(dest="flag_command", required=True, metavar="ACTION")
    for name, text in (("kill", "turn a flag off for everyone"), ("restore", "turn it back on")):
        p = flag_sub.add_parser(name, help=text)
        p.add_argument("key")
        p.add_argument("--reason", required=True)
        with_config(p)
        with_take_over(p)
    p = flag_sub.add_parser("set", help="set a flag's rollout percentage")
    p.add_argument("key")
    p.add_argument("percent", type=int)
    p.add_argument("--reason", required=True)
    with_config(p)
    with_take_over(p)
    p = flag_sub.add_parser("target", help="serve a flag to a cohort whatever its percentage "
                                           "(flagd, unleash, launchdarkly, split)")
    p.add_argument("key")
    p.add_argument("--segment", required=True, metavar="ATTR=V1,V2",
                   help="who: userId=alice,bob, plan=beta or country=DE,FR (replaces the "
                        "flag's cohort on ATTR, if it has one)")
    p.add_argument("--reason", required=True)
    with_config(p)
    with_take_over(p)
    p = flag_sub.add_parser("untarget", help="stop serving a flag to its cohort on one "
                                             "attribute")
    p.add_argument("key")
    p.add_argument("--attribute", required=True, metavar="ATTR")
    p.add_argument("--reason", required=True)
    with_config(p)
    with_take_over(p)

    migrate = sub.add_parser("migrate", help="a database migration's down, asked for by "
                                             "an operator after a rollback")
    migrate_sub = migrate.add_subparsers(dest="migrate_command", required=True,
                                         metavar="ACTION")
    p = migrate_sub.add_parser("down", help="run one expand migration's down after a "
                                            "rollback (never run by itself: a forward fix "
                                            "is usually safer), journalled and verified")
    p.add_argument("name", help="the migration's name (release.migrations[].name)")
    p.add_argument("--reason", required=True, help="why (journalled)")
    with_config(p)
    with_take_over(p)

    releases = sub.add_parser(
        "releases", help="every release in the state folder, with how it ended"
    )
    releases.add_argument("-c", "--config", default=None,
                          help="use this config's state folder (default: the user state dir)")
    releases.add_argument("--state-dir", type=Path, default=None,
                          help="where journals and leases live (default: the user state dir)")
    releases.add_argument("--json", action="store_true", help="one JSON object per release")

    fleet = sub.add_parser(
        "fleet", help="every release in one live table (Argo Rollouts, or a folder of "
                      "configs); enter attaches the console, escape comes back")
    fleet.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                       help="Rollouts of this namespace (repeatable; default: every "
                            "namespace the kubeconfig may list, else its own)")
    fleet.add_argument("--context", action="append", default=[], metavar="NAME",
                       help="kubeconfig context (repeatable: several clusters in one "
                            "table; default: the current context)")
    fleet.add_argument("--kubeconfig", type=Path, default=None, metavar="PATH",
                       help="default: KUBECONFIG, then ~/.kube/config, then in-cluster")
    fleet.add_argument("--dir", type=Path, default=None, metavar="FOLDER",
                       help="instead of Kubernetes: the releases of a folder of relconsole "
                            "configs (*.yaml), from their journals and leases")
    fleet.add_argument("--state-dir", type=Path, default=None,
                       help="where journals and leases live (default: each config's, else "
                            "the user state dir)")
    fleet.add_argument("--watch", action="store_true",
                       help="attach watch-only: change nothing")
    fleet.add_argument("--theme", default=None,
                       help="dark, light, high-contrast or ansi")
    fleet.add_argument("--no-mouse", action="store_true",
                       help="no mouse reporting (less traffic on slow SSH links)")

    journal = sub.add_parser("journal", help="the release's history")
    with_config(journal)
    journal.add_argument("--format", choices=("md", "json"), default="md")
    journal.add_argument("--verify", action="store_true", help="check the hash chain")

    report = sub.add_parser(
        "report", help="what happened: timeline, verdicts, decisions, charts; an incident "
                       "review after a rollback")
    with_config(report)
    report.add_argument("--format", choices=("md", "html", "json"), default="md",
                        help="md (default), html (one self-contained file with charts) "
                             "or json")
    return parser


# ---------------------------------------------------------------------- helpers


def _load(
    args: argparse.Namespace, *, resolve_secrets: bool = True, **options: Any
) -> LoadedConfig:
    path = Path(args.config)
    if not path.exists() and args.config == DEFAULT_CONFIG:
        raise CliError(
            f"{path}: no config file here. Pass one with -c FILE "
            "(config.example.yaml runs on the simulator), or try `relconsole demo`.",
            ExitCode.USAGE,
        )
    cfg = load_config(path, resolve_secrets=resolve_secrets, **options)
    from relconsole.assembly import resolve_from_cluster

    # A Rollout's own plan and AnalysisTemplate, before anything is built on the config.
    return resolve_from_cluster(cfg, _clock())


def _clock(speed: float = 1.0) -> SystemClock:
    return SystemClock(speed)


def _follow_terminal_size() -> None:
    """Let the TUI follow the real terminal size, not a stale COLUMNS/LINES pair.

    Textual reads the size through `shutil.get_terminal_size()`, which prefers these
    variables over asking the terminal. Shells export them (and tmux panes started from
    some environments carry them), and then every resize is "resized" to the old size:
    shrinking a window to 60×20 left an 80×24 layout cut off at the edges.
    """
    if sys.stdout.isatty():
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


def _run_tui(
    session: Any, args: argparse.Namespace, theme: str | None, simulation: float | None = None,
    handoff: Handoff | None = None,
) -> int:
    from relconsole.tui.app import ReleaseApp

    _follow_terminal_size()
    fleet = _fleet_args(args)
    app = ReleaseApp(session.engine, theme=theme, watch_reason=session.watch_reason,
                     simulation=simulation, state_dir=session.state_dir, handoff=handoff,
                     take=session.take,
                     notices=(session.state_warning,) if session.state_warning else (),
                     fleet_entry=fleet is not None)
    app.run(mouse=not args.no_mouse)
    if app.exit_line:
        # Once the terminal is back: where the release was left, and how to get back to it.
        print(app.exit_line)
    if app.to_fleet and fleet is not None:
        asyncio.run(session.close())
        return cmd_fleet(fleet)
    return 0


def _fleet_args(args: argparse.Namespace) -> argparse.Namespace | None:
    """What `relconsole fleet` shows for the release `run` attached to: the Rollouts of
    its cluster and namespace, or the configs of its folder; None for the demo."""
    if getattr(args, "command", None) != "run":
        return None
    path = Path(args.config)
    try:
        traffic = load_config(path, resolve_secrets=False).providers.get("traffic", {})
    except ConfigError:
        return None
    common = {"watch": args.watch, "theme": args.theme, "no_mouse": args.no_mouse,
              "state_dir": args.state_dir}
    if traffic.get("type") == "argo-rollouts":
        kubeconfig = traffic.get("kubeconfig")
        return argparse.Namespace(
            dir=None, namespace=[traffic["namespace"]] if traffic.get("namespace") else [],
            context=[traffic["context"]] if traffic.get("context") else [],
            kubeconfig=(path.parent / Path(kubeconfig).expanduser()) if kubeconfig else None,
            **common)
    return argparse.Namespace(dir=path.resolve().parent, namespace=[], context=[],
                              kubeconfig=None, **common)


def _handoff(session: Any, command: list[str], reattach: list[str]) -> Handoff:
    """How the console hands its release to `relconsole <command> --headless` on quitting
    (the same config and state folder), and the command that attaches to it again."""
    return Handoff(
        argv=(sys.executable, "-m", "relconsole", *command, "--headless"),
        state_dir=session.state_dir,
        release_id=session.engine.plan.release_id,
        reattach=shlex.join(["relconsole", *reattach]),
        cwd=Path.cwd(),
    )


def _front_end(
    session: Any, args: argparse.Namespace, theme: str | None, simulation: float | None = None,
    handoff: Handoff | None = None,
) -> int:
    take_with = (shlex.join(["relconsole", "run", "-c", args.config])
                 if args.command == "run" else "relconsole demo")

    async def headless() -> int:
        try:
            return await run_headless(session.engine, as_json=args.json, take_with=take_with)
        finally:
            await session.close()

    if args.headless:
        if session.state_warning:
            print(f"relconsole: warning: {session.state_warning}", file=sys.stderr)
        if session.engine.mode is Mode.WATCH and session.watch_reason:
            # A pipeline that only watches must say so, and who drives instead.
            print(f"relconsole: watch-only: {session.watch_reason}", file=sys.stderr)
        return asyncio.run(headless())
    try:
        return _run_tui(session, args, theme, simulation, handoff)
    finally:
        asyncio.run(session.close())


# ---------------------------------------------------------------------- commands


def cmd_demo(args: argparse.Namespace) -> int:
    from relconsole.assembly import demo_config, demo_state, open_session

    if args.speed <= 0:
        raise CliError("--speed must be positive", ExitCode.USAGE)
    cfg = demo_config(args.scenario, args.seed, auto_advance=not args.manual)
    if args.headless:
        cfg = dataclasses.replace(
            cfg, plan=dataclasses.replace(cfg.plan, auto_advance=True, auto_rollback=True)
        )
    clock = _clock(args.speed)
    state = demo_state(args.state_dir)
    for kept in state.kept:
        print(f"relconsole: the previous demo's journal is kept as {kept}", file=sys.stderr)
    sdir = state.dir
    if args.watch:
        return _demo_watch(cfg, clock, sdir, args)
    session = open_session(cfg, clock=clock, state=sdir, take_over=_take_over_reason(args))
    where = ["--state-dir", str(args.state_dir)] if args.state_dir else []
    handoff = _handoff(
        session,
        ["demo", "--scenario", args.scenario, "--seed", str(args.seed), "--speed",
         f"{args.speed:g}", "--state-dir", str(sdir.parent)],
        ["demo", "--scenario", args.scenario, *where],
    )
    return _front_end(session, args, args.theme or cfg.theme, simulation=args.speed,
                      handoff=handoff)


def _demo_watch(cfg: LoadedConfig, clock: Any, sdir: Path, args: argparse.Namespace) -> int:
    """Watch a simulated release: the demo that drives it, or one moved along here.

    A watcher never takes the lease. When another demo drives in this state folder it
    is that demo's release being watched; only when nobody drives does a driver in
    this same process move a release along for the watcher to show.
    """
    from relconsole.assembly import build_providers, open_session
    from relconsole.engine.lease import current_holder
    from relconsole.model import Actor

    if current_holder(sdir, cfg.plan.release_id) is not None:
        session = open_session(cfg, clock=clock, state=sdir, watch=True)
        return _front_end(session, args, args.theme or cfg.theme, simulation=args.speed)
    providers = build_providers(cfg, clock, state=sdir)
    driver = open_session(cfg, clock=clock, state=sdir, providers=providers,
                          actor=Actor("demo-driver", "simulator"))
    watcher = open_session(cfg, clock=clock, state=sdir, providers=providers, watch=True)
    watcher.watch_reason = "--watch: the demo driver moves this release"
    from relconsole.tui.app import ReleaseApp

    app = ReleaseApp(watcher.engine, theme=args.theme or cfg.theme,
                     watch_reason=watcher.watch_reason, background=[driver.engine.run],
                     simulation=args.speed, state_dir=sdir)
    _follow_terminal_size()
    try:
        app.run(mouse=not args.no_mouse)
    finally:
        asyncio.run(driver.close())
    return 0


def _wait_to_start(args: argparse.Namespace, cfg: LoadedConfig) -> None:
    """`run --at TIME`: wait, counting down on the terminal, before anything is taken or
    read; Ctrl-C gives up (exit 130) with nothing started."""
    from relconsole.schedule import ScheduleError, countdown, start_time

    if args.at is None:
        return
    try:
        start = start_time(args.at, time.time(), cfg.plan.schedule.timezone)
    except ScheduleError as exc:
        raise CliError(f"--at: {exc}, or +10m", ExitCode.USAGE) from None
    what = f"{cfg.plan.service} {cfg.plan.version} → {cfg.plan.environment}"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start))
    live = sys.stderr.isatty()
    said = -1.0
    try:
        while (left := start - time.time()) > 0:
            # A terminal gets one line redrawn every second; a log, a line a minute.
            if live or said < 0 or said - left >= 60:
                line = (f"relconsole: {what} starts at {when} — in {countdown(left)} "
                        "(Ctrl-C cancels; nothing is started until then)")
                print(("\r" + line) if live else line, end="" if live else "\n",
                      file=sys.stderr, flush=True)
                said = left
            time.sleep(min(1.0, left))
    except KeyboardInterrupt:
        print("\nrelconsole: not started (cancelled before its time)", file=sys.stderr)
        raise SystemExit(ExitCode.INTERRUPTED) from None
    if live:
        print(file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from relconsole.assembly import open_session

    cfg = _load(args)
    _wait_to_start(args, cfg)
    if args.headless:
        cfg = dataclasses.replace(
            cfg, plan=dataclasses.replace(cfg.plan, auto_advance=True, auto_rollback=True)
        )
    clock = _clock()
    again = _again_reason(args)
    session = open_session(cfg, clock=clock, watch=args.watch, state=args.state_dir,
                           take_over=_take_over_reason(args))
    if session.lease is None and not args.watch:
        if args.headless or again:
            asyncio.run(session.close())
            raise CliError(f"cannot drive: {session.take_over_hint()}", ExitCode.ERROR)
        reason = _confirm_expired_take_over(session)
        if reason:
            asyncio.run(session.close())
            session = open_session(cfg, clock=clock, state=args.state_dir, take_over=reason)
    if again:
        _start_again(session, again)
    _override_window(session, args)
    where = ["--state-dir", str(args.state_dir)] if args.state_dir else []
    handoff = _handoff(
        session,
        ["run", "-c", str(Path(args.config).resolve()), "--state-dir", str(session.state_dir)],
        ["run", "-c", args.config, *where],
    )
    return _front_end(session, args, args.theme or cfg.theme, handoff=handoff)


def _override_window(session: Any, args: argparse.Namespace) -> None:
    """`--override-window --reason TEXT`: this console may start and advance outside the
    release's deployment windows and freezes; journalled before anything moves."""
    if not getattr(args, "override_window", False):
        return
    if not args.reason.strip():
        asyncio.run(session.close())
        raise CliError("--override-window needs --reason TEXT: starting outside the "
                       "deployment window is journalled with why", ExitCode.USAGE)
    if session.engine.mode is not Mode.DRIVE:
        return  # a watcher changes nothing; the driver's own override stands
    result = session.engine.override_window(args.reason)
    if not result.ok:
        asyncio.run(session.close())
        raise CliError(result.message, ExitCode.ERROR)


def _again_reason(args: argparse.Namespace) -> str | None:
    if not getattr(args, "again", False):
        return None
    if args.watch:
        raise CliError("--again starts a new attempt, which a --watch console cannot do",
                       ExitCode.USAGE)
    if not args.reason.strip():
        raise CliError("--again needs --reason TEXT: running a release again is journalled "
                       "with why (what was fixed)", ExitCode.USAGE)
    return args.reason.strip()


def _start_again(session: Any, reason: str) -> None:
    """Journal a `restart`: recovery then starts the release over at the first step,
    and every record of the earlier attempts stays in the journal."""
    from relconsole.engine.recovery import RESTART, again_refusal, attempt_phase

    journal = session.engine.journal
    records = journal.records()
    refusal = again_refusal(records)
    if refusal is not None:
        asyncio.run(session.close())
        raise CliError(f"--again refused for {session.engine.plan.release_id}: {refusal}",
                       ExitCode.USAGE)
    from relconsole.engine.journal import JournalError

    last: dict[str, Any] = next((r["after"] for r in reversed(records)
                                 if isinstance(r.get("after"), dict) and "weight" in r["after"]),
                                {})

    try:
        journal.append(RESTART, reason=reason,
                       before={"phase": attempt_phase(records), "weight": last.get("weight", 0)},
                       after={"phase": "pending", "weight": last.get("weight", 0)},
                       outcome="verified")
    except JournalError as exc:
        asyncio.run(session.close())
        raise CliError(f"--again: {exc}", ExitCode.ERROR) from exc


# Commands whose --reason is only ever the take-over's: they take no action of their own.
REASON_IS_TAKE_OVER = frozenset({"run", "demo"})


def _take_over_reason(args: argparse.Namespace) -> str | None:
    """Why the lease is taken, kept apart from the action's --reason (issue 10): on a
    one-shot command `--reason` is the action's and never doubles as the take-over's."""
    if not getattr(args, "take_over", False):
        if getattr(args, "take_over_reason", ""):
            raise CliError("--take-over-reason needs --take-over", ExitCode.USAGE)
        return None
    why = args.take_over_reason.strip()
    if not why and args.command in REASON_IS_TAKE_OVER:
        why = args.reason.strip()  # `run --take-over --reason TEXT`, as it always was
    if not why:
        raise CliError("--take-over needs --take-over-reason TEXT: taking a release from "
                       "someone is journalled with why (--reason is the action's own "
                       "reason, and is not used for the take-over)", ExitCode.USAGE)
    return why


def _confirm_expired_take_over(session: Any) -> str | None:
    """A lease whose holder stopped renewing it may be taken, after a confirmation."""
    holder = session.holder
    if holder is None or not holder.expired():
        return None
    if not sys.stdin.isatty():
        print(f"relconsole: {session.take_over_hint()}; watching instead", file=sys.stderr)
        return None
    print(session.take_over_hint())
    if input("Take over this release now? [y/N] ").strip().lower() not in ("y", "yes"):
        return None
    reason = input("Reason (journalled): ").strip()
    return reason or None


def cmd_check(args: argparse.Namespace) -> int:
    from relconsole.assembly import build_providers
    from relconsole.providers import registry

    # `check` is where a user fixes a file, so it lists every problem, not just the first;
    # knowing the adapters here also catches a misspelt `type:` along with the rest.
    known = {kind: registry.available(kind) for kind in ("metrics", "traffic", "flags")}
    try:
        cfg = _load(args, collect=True, provider_types=known)
    except ConfigProblems as found:
        for problem in found.problems:
            print(f"relconsole: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    # An adapter's own settings are checked as it is built: only then is the file ok.
    providers = build_providers(cfg, _clock(), state=args.state_dir)
    print(f"{cfg.path}: config ok ({cfg.plan.service} {cfg.plan.version} "
          f"→ {cfg.plan.environment}, {cfg.plan.strategy}, "
          f"{f'{len(cfg.plan.steps)} steps' if cfg.plan.steps else 'steps from the Rollout'}, "
          f"{len(cfg.plan.gates)} gates)")
    for metric in cfg.plan.metrics:
        print(f"{metric.name}: {metric.judging()}")

    async def traffic() -> tuple[bool, str]:
        state = await providers.traffic.read()
        c = state.controller
        if c is not None:
            return True, (f"{c.resource}: {c.phase}" + (f" — {c.message}" if c.message else "")
                          + f", step {c.step}/{c.steps}, canary at {state.canary_weight}%")
        said = [f"canary at {state.canary_weight}%"]
        if state.route:
            said.append(state.route.text())
        if state.note:
            said.append(state.note)  # the provider's word (a blue-green preview's answer)
        return True, " · ".join(said)

    async def metrics() -> tuple[bool, str]:
        assert providers.metrics is not None
        pairs = await providers.metrics.sample(cfg.plan.metrics)
        # A metric that measures the canary alone (imported from Argo) has no baseline.
        alone = {m.name for m in cfg.plan.metrics if m.canary_only}
        bad = [f"{n}: {p.canary.problem or p.baseline.problem}"
               for n, p in pairs.items()
               if not (p.canary.usable and (p.baseline.usable or n in alone))]
        detail = f"{len(pairs)} metrics" + (f"; no usable value for {'; '.join(bad)}"
                                            if bad else "")
        # A canary not yet deployed has no series; a source where neither version reads
        # anything is dead, and a ✓ beside it would mislead.
        alive = any(p.canary.usable or p.baseline.usable for p in pairs.values())
        return alive or not pairs, detail

    async def flags() -> tuple[bool, str]:
        assert providers.flags is not None
        return True, f"{len(await providers.flags.list_flags())} flags"

    async def probe() -> int:
        failures = 0
        checks: list[tuple[str, Callable[[], Awaitable[tuple[bool, str]]]]] = [
            ("traffic", traffic)
        ]
        if providers.metrics is not None and cfg.plan.metrics:
            checks.append(("metrics", metrics))
        if providers.flags is not None:
            checks.append(("flags", flags))
        for kind, call in checks:
            name = cfg.providers[kind]["type"]
            try:
                ok, detail = await asyncio.wait_for(call(), timeout=cfg.plan.call_timeout)
            except Exception as exc:  # every provider failure is reported, none crashes
                ok, detail = False, str(exc) or type(exc).__name__
            failures += not ok
            print(f"{'✓' if ok else '✗'} {kind} ({name}): {detail}")
        if args.preflight:
            from relconsole.plan.preflight import preflight

            failures += await preflight(cfg, providers)
        for p in (providers.metrics, providers.traffic, providers.flags):
            if p is not None:
                await p.close()
        return ExitCode.ERROR if failures else ExitCode.OK

    return asyncio.run(probe())


def cmd_plan(args: argparse.Namespace) -> int:
    from relconsole.assembly import build_providers
    from relconsole.plan import build_plan, gather, render_json, render_markdown

    cfg = _load(args)
    providers = build_providers(cfg, _clock(), state=args.state_dir)

    async def read() -> Any:
        try:
            return await gather(cfg, providers)
        finally:
            for p in (providers.metrics, providers.traffic, providers.flags):
                if p is not None:
                    await p.close()

    plan = build_plan(cfg, asyncio.run(read()), time.time())
    text = render_markdown(plan)
    print(render_json(plan) if args.format == "json" else text, end="")
    if not args.announce:
        return ExitCode.OK
    if not cfg.notify:
        raise CliError("--announce: the config has no notify: targets to send the plan to "
                       "(add notify: [{type: slack, url: …}])", ExitCode.USAGE)
    from relconsole.engine.paths import current_actor
    from relconsole.notify.announce import announce

    missed = announce(cfg.notify, cfg.plan, text, who=str(current_actor()))
    for line in missed:
        print(f"relconsole: announce: {line}", file=sys.stderr)
    return ExitCode.ERROR if missed else ExitCode.OK


def _controller(snap: Any) -> Any:
    """The controller that owns the plan (Argo Rollouts), as the last read says; or None."""
    return snap.traffic.controller if snap.traffic is not None else None


def _step_numbers(snap: Any) -> tuple[int, int]:
    """(step, steps) as the screen counts them; a controller's own count when it owns
    the plan (Argo's 'Step: 3/8'), so `status` and `kubectl argo rollouts` agree."""
    c = _controller(snap)
    if c is not None:
        return (c.step or 0), (c.steps or 0)
    return snap.step_index + 1, len(snap.plan.steps)


def _route(snap: Any) -> Any:
    """The live route of a strategy that routes by more than a weight; None otherwise."""
    if not snap.plan.routed or snap.traffic is None:
        return None
    return snap.traffic.route


def _snapshot_dict(snap: Any) -> dict[str, Any]:
    step, steps = _step_numbers(snap)
    c = _controller(snap)
    return {
        "service": snap.plan.service,
        "version": snap.plan.version,
        "environment": snap.plan.environment,
        "phase": snap.phase.value,
        "strategy": snap.plan.strategy,
        "step": step,
        "steps": steps,
        # With a controller this is the weight it really applies (Argo's actual weight).
        "weight": snap.weight,
        # What besides the weight reaches the new version, as the provider read it.
        **({"route": {"cohorts": list(route.cohorts), "mirror": route.mirror,
                      "batches": route.batches}}
           if (route := _route(snap)) is not None else {}),
        **({"controller": c.as_json()} if c is not None else {}),
        "bake_remaining": snap.bake_remaining,
        "pause_reason": snap.pause_reason,
        "driver": snap.driver,
        "gates": [g.as_dict() for g in snap.gates],
        "metrics": {n: {"canary": c, "baseline": b} for n, (c, b) in snap.latest.items()},
        "problems": [{"source": p.source, "message": p.message, "since": p.since}
                     for p in snap.problems],
    }


def cmd_status(args: argparse.Namespace) -> int:
    from relconsole.assembly import open_session
    from relconsole.model import Phase
    from relconsole.placeholders import dashboards

    cfg = _load(args)
    session = open_session(cfg, clock=_clock(), watch=True, state=args.state_dir)

    async def go() -> int:
        try:
            await session.engine.attach()
            snap = session.engine.snapshot()
        finally:
            await session.close()
        if args.json:
            print(json.dumps(_snapshot_dict(snap), indent=2, default=str))
            return 0
        plan = snap.plan
        print(f"{plan.service} {plan.version} → {plan.environment} ({plan.strategy})")
        step, steps = _step_numbers(snap)
        print(f"phase: {snap.phase.label}   canary: {snap.weight}%   "
              f"step {step}/{steps}   driver: {snap.driver}")
        route = _route(snap)
        if route is not None:
            print(f"route: {route.text() or 'nothing routed besides the weight'}")
        c = _controller(snap)
        if c is not None:
            set_actual = (f"set {c.set_weight}% · actual {c.actual_weight}%"
                          if c.set_weight is not None else "")
            print(f"{c.system} ({c.resource}): {c.phase}"
                  + (f" — {c.message}" if c.message else "")
                  + (f"   {set_actual}" if set_actual else ""))
            if c.last_action:
                print(f"last action: {c.last_action}")
        if snap.pause_reason:
            print(f"paused: {snap.pause_reason}")
        for what, address in dashboards(plan):
            print(f"{what} dashboard: {address}")
        for p in snap.problems:
            print(f"! {p.message} (since {clock_text(p.since)})")
        cause = snap.rollback_cause
        if cause is not None and snap.phase in (
            Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED
        ):
            print(f"rolled back from {cause.weight}% at {clock_text(cause.at)}: {cause.reason}")
        for g in snap.gates:
            # One spelling with the screen and the journal: values and limits both in the
            # metric's unit, never '0.22%' beside '≤0.01'.
            unit = g.unit or units.unit_of(plan.metrics, g.name)
            print(f"  {g.verdict.value.upper():<12} {g.name:<14} "
                  f"canary {format_value(g.name, g.canary, unit):>8}  "
                  f"baseline {format_value(g.name, g.baseline, unit):>8}  "
                  f"{units.threshold(g.spec, unit):<16} {g.reason}")
        return 0

    return asyncio.run(go())


def _drive(args: argparse.Namespace, action: Any) -> int:
    """Open a driving session, attach, run one intent, report its verified outcome."""
    from relconsole.assembly import open_session
    from relconsole.model import Phase

    cfg = _load(args)
    session = open_session(cfg, clock=_clock(), state=args.state_dir,
                           take_over=_take_over_reason(args))
    if session.lease is None:
        asyncio.run(session.close())
        raise CliError(f"cannot act: {session.take_over_hint()}", ExitCode.ERROR)
    if session.state_warning:
        print(f"relconsole: warning: {session.state_warning}", file=sys.stderr)
    _override_window(session, args)

    async def go() -> int:
        try:
            await session.engine.attach(announce=False)
            result = await action(session.engine)
            if not result.ok and session.engine.phase in (
                Phase.ROLLING_BACK, Phase.ROLLBACK_FAILED
            ):
                print(result.message, file=sys.stderr)
                result = await session.engine.settle_rollback()
        finally:
            await session.close()
        print(result.message, file=sys.stdout if result.ok else sys.stderr)
        return ExitCode.OK if result.ok else ExitCode.ERROR

    return asyncio.run(go())


def cmd_intent(args: argparse.Namespace) -> int:
    name = args.command
    if name == "advance":
        if args.skip_bake and not args.reason.strip():
            raise CliError("--skip-bake needs --reason TEXT: cutting a bake short is "
                           "journalled with why", ExitCode.USAGE)
        return _drive(args, lambda engine: engine.advance(args.reason,
                                                          skip_bake=args.skip_bake))
    return _drive(args, lambda engine: getattr(engine, name)(args.reason))


def _age(now: float, at: float | None) -> str:
    if at is None:
        return "—"
    days = (now - at) / 86400
    return f"{days:.0f}d" if days >= 1 else f"{max(0.0, days) * 24:.0f}h"


def cmd_flags(args: argparse.Namespace) -> int:
    from relconsole import flags_audit
    from relconsole.assembly import build_providers

    cfg = _load(args)
    providers = build_providers(cfg, _clock(), state=args.state_dir)
    if providers.flags is None:
        raise CliError(f"{cfg.path}: no flag provider is configured (providers.flags)",
                       ExitCode.USAGE)

    flags = providers.flags

    async def go() -> list[Flag]:
        try:
            return await asyncio.wait_for(flags.list_flags(), cfg.plan.call_timeout)
        finally:
            await flags.close()

    try:
        listed = asyncio.run(go())
    except Exception as exc:
        raise CliError(f"flags: {exc or type(exc).__name__}") from None
    mine = set(cfg.plan.release_flags)
    listed = [dataclasses.replace(f, in_release=f.in_release or f.key in mine) for f in listed]
    now = time.time()
    findings = flags_audit.audit(listed, cfg.plan.flags_audit, now)
    if args.audit:
        if args.json:
            print(json.dumps([f.as_dict() for f in findings], indent=2))
        else:
            print(flags_audit.render_table(findings))
        return ExitCode.ERROR if findings else ExitCode.OK
    by_key = flags_audit.findings_by_key(findings)
    rows = [
        {"key": f.key, "type": f.kind.value, "enabled": f.enabled, "rollout": f.rollout,
         "owner": f.owner, "description": f.description, "in_release": f.in_release,
         "environment": f.environment, "created": f.created, "last_changed": f.last_changed,
         "expires": f.expires, "stale": f.stale,
         # None where the flag system does not read targeting back.
         "segments": ([{"attribute": x.attribute, "values": list(x.values)}
                       for x in f.segments] if f.segments is not None else None),
         "audit": [x.check for x in by_key.get(f.key, ())]}
        for f in listed
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r, f in zip(rows, listed, strict=True):
        state = "ON" if r["enabled"] else "KILLED"
        rollout = f"{r['rollout']}%" if r["rollout"] is not None else "—"
        mark = "★" if r["in_release"] else " "
        audit = flags_audit.marker(by_key.get(f.key, ()))
        cohorts = ("  on for " + "; ".join(x.text() for x in f.segments)
                   if f.segments else "")
        print(f"{mark} {r['key']:<34} {r['type']:<12} {state:<7} {rollout:>5}  "
              f"{_age(now, f.created):>5}  {audit:<3} {r['owner'] or '(no owner)'}{cohorts}")
    if findings:  # the letters mean nothing on their own
        print(f"audit: {flags_audit.legend()} (details: --audit)")
    return 0


def cmd_flag(args: argparse.Namespace) -> int:
    if args.flag_command in ("target", "untarget"):
        return _flag_cohort(args)
    if args.flag_command == "set":
        if not 0 <= args.percent <= 100:
            raise CliError(f"percent must be 0–100, got {args.percent}", ExitCode.USAGE)
        return _drive(args, lambda e: e.set_flag_rollout(args.key, args.percent, args.reason))
    enabled = args.flag_command == "restore"
    return _drive(args, lambda e: e.set_flag(args.key, enabled, args.reason))


def _flag_cohort(args: argparse.Namespace) -> int:
    """`flag target KEY --segment ATTR=V1,V2` / `flag untarget KEY --attribute ATTR`."""
    from relconsole.engine.flag_actions import (
        attribute_problem,
        parse_segment,
        targeting_refusal,
    )
    from relconsole.providers.base import targets_segments

    if not args.reason.strip():
        raise CliError("--reason must say why: it is journalled", ExitCode.USAGE)
    if args.flag_command == "target":
        segment = parse_segment(args.segment)
        if isinstance(segment, str):
            raise CliError(f"--segment: {segment}", ExitCode.USAGE)
        attribute, values = segment.attribute, segment.values
    else:
        attribute, values = args.attribute.strip(), ()
        problem = attribute_problem(attribute)
        if problem:
            raise CliError(f"--attribute: {problem}", ExitCode.USAGE)

    async def act(engine: Any) -> Any:
        provider = engine.flags_provider
        if provider is not None and not targets_segments(provider):
            raise CliError(f"{targeting_refusal(provider.name)} (providers.flags)",
                           ExitCode.USAGE)
        return await engine.set_flag_cohort(args.key, attribute, values, args.reason)

    return _drive(args, act)


def cmd_migrate(args: argparse.Namespace) -> int:
    """`migrate down NAME --reason TEXT`: the engine refuses it unless the release is
    rolled back and NAME's up is verified in the journal; its exit status verifies it."""
    return _drive(args, lambda e: e.run_down(args.name, args.reason))


def cmd_releases(args: argparse.Namespace) -> int:
    from relconsole.engine.paths import state_dir
    from relconsole.releases import list_releases, render

    folder = args.state_dir
    if folder is None and args.config is not None:
        folder = _load(args, resolve_secrets=False).state_dir
    state = state_dir(folder)
    print(render(list_releases(state), state, args.json))
    return ExitCode.OK


def cmd_fleet(args: argparse.Namespace) -> int:
    """The fleet table; enter runs the console on a release, escape there comes back.

    Each screen is its own Textual app, run one after the other: the fleet exits with the
    release to attach to, the console exits with `to_fleet` set when escape left it, and
    the fleet starts again (listing afresh) with the console's exit line as a notice.
    """
    from relconsole.assembly import open_session
    from relconsole.fleet.rows import ConfigTarget, FleetSource, Target
    from relconsole.tui.app import ReleaseApp
    from relconsole.tui.fleet import FleetApp, FleetView

    if args.dir is not None:
        if args.namespace or args.context or args.kubeconfig:
            raise CliError("--dir lists a folder of relconsole configs; --namespace, "
                           "--context and --kubeconfig are for Argo Rollouts: give one or "
                           "the other", ExitCode.USAGE)
        if not args.dir.is_dir():
            raise CliError(f"{args.dir}: not a folder (--dir takes a folder of relconsole "
                           "configs)", ExitCode.USAGE)
    if args.theme is not None and _unknown_theme(args.theme):
        raise CliError(_unknown_theme(args.theme), ExitCode.USAGE)

    def source() -> FleetSource:
        if args.dir is not None:
            from relconsole.fleet.folder import FolderFleet

            return FolderFleet(args.dir, state=args.state_dir)
        from relconsole.fleet.argo import ArgoFleet

        return ArgoFleet(args.context or [None], args.namespace, kubeconfig=args.kubeconfig)

    def config_for(target: Target) -> LoadedConfig:
        if isinstance(target, ConfigTarget):
            return load_config(target.path)
        from relconsole import assembly

        return assembly.config_for_rollout(
            rollout=target.rollout, namespace=target.namespace, context=target.context,
            kubeconfig=target.kubeconfig, state=args.state_dir)

    def attach(target: Target) -> tuple[bool, str]:
        """The console on `target`: (back to the fleet?, the line to show there)."""
        try:
            cfg = config_for(target)
            session = open_session(cfg, clock=_clock(), watch=args.watch,
                                   state=args.state_dir)
        except (ConfigError, CliError) as exc:
            return True, f"not attached: {exc}"
        except Exception as exc:  # a provider that cannot be built: said in the fleet
            return True, f"not attached: {type(exc).__name__}: {exc}"
        # A Rollout's config is a file too (config_for_rollout writes it): the console
        # hands off to `run -c` on it, and says how to attach again, as for any config.
        where = ["--state-dir", str(args.state_dir)] if args.state_dir else []
        handoff = _handoff(
            session,
            ["run", "-c", str(Path(cfg.path).resolve()), "--state-dir", str(session.state_dir)],
            ["run", "-c", str(cfg.path), *where],
        )
        warning = session.state_warning
        app = ReleaseApp(session.engine, theme=args.theme or cfg.theme,
                         watch_reason=session.watch_reason, state_dir=session.state_dir,
                         handoff=handoff, take=session.take, fleet=True,
                         notices=(warning,) if warning else ())
        try:
            app.run(mouse=not args.no_mouse)
        finally:
            asyncio.run(session.close())
        return app.to_fleet, app.exit_line

    _follow_terminal_size()
    notice = ""
    view = FleetView()
    while True:
        fleet = FleetApp(source(), theme=args.theme, mouse=not args.no_mouse, notice=notice,
                         view=view)
        target = fleet.run()
        view = fleet.view  # sort, filter and selection as the operator left them
        if target is None:
            return ExitCode.OK
        back, notice = attach(target)
        if not back:
            if notice:
                print(notice)  # once the terminal is back, as `relconsole run` does
            return ExitCode.OK


def cmd_journal(args: argparse.Namespace) -> int:
    from relconsole.engine.journal import Journal, journal_path, render_markdown, verify
    from relconsole.engine.paths import current_actor, state_dir
    from relconsole.placeholders import dashboards

    cfg = _load(args, resolve_secrets=False)
    path = journal_path(state_dir(args.state_dir or cfg.state_dir), cfg.plan.release_id)
    if not path.exists():
        raise CliError(f"no journal yet for {cfg.plan.release_id} (looked in {path})",
                       ExitCode.ERROR)
    if args.verify:
        result = verify(path)
        if result.ok:
            print(f"{path}: {result.count} records, hash chain intact")
            return 0
        for problem in result.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return ExitCode.ERROR
    checked = verify(path)
    if not checked.ok:
        # A history someone edited or lost part of must not read as the whole story.
        print(f"relconsole: warning: {path}: the hash chain is broken "
              f"({checked.problems[0]}); run `relconsole journal --verify` for every problem",
              file=sys.stderr)
    journal = Journal(path, _clock(), current_actor(), release=cfg.plan.release_id,
                      read_only=True)
    records = journal.records()
    if args.format == "json":
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
    else:
        print(render_markdown(records, f"{cfg.plan.service} {cfg.plan.version} "
                                       f"→ {cfg.plan.environment}",
                              links=dashboards(cfg.plan)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from relconsole.assembly import build_providers
    from relconsole.engine.journal import Journal, JournalError, journal_path, verify
    from relconsole.engine.paths import current_actor, state_dir
    from relconsole.placeholders import dashboards
    from relconsole.report import build_report, fetch_series, render

    cfg = _load(args)
    sdir = state_dir(args.state_dir or cfg.state_dir)
    path = journal_path(sdir, cfg.plan.release_id)
    records = []
    if path.exists():
        try:
            records = Journal(path, _clock(), current_actor(), release=cfg.plan.release_id,
                              read_only=True).records()
        except JournalError as exc:
            raise CliError(str(exc), ExitCode.ERROR) from None
    if not records:
        raise CliError(f"no journal yet for {cfg.plan.release_id} (looked in {path}): "
                       "nothing has happened to report; run the release first, or pass "
                       "--state-dir where its journal is", ExitCode.ERROR)
    checked = verify(path)
    if not checked.ok:
        print(f"relconsole: warning: {path}: the hash chain is broken "
              f"({checked.problems[0]}); the report may not tell the whole story "
              "(`relconsole journal --verify` lists every problem)", file=sys.stderr)
    providers = build_providers(cfg, _clock(), state=args.state_dir)

    async def series() -> tuple[Any, str]:
        try:
            return await fetch_series(providers.metrics, cfg.plan, records)
        finally:
            for p in (providers.metrics, providers.traffic, providers.flags):
                if p is not None:
                    await p.close()

    found, note = asyncio.run(series())
    report = build_report(records, cfg.plan, baseline_version=cfg.versions.get("baseline", ""),
                          series=found, series_note=note, dashboards=dashboards(cfg.plan))
    sys.stdout.write(render(report, args.format))
    return ExitCode.OK


def _misused_option(args: argparse.Namespace) -> str:
    """Why an option given would do nothing in the chosen mode ("" when all apply).

    Silently ignoring one misleads: `--theme neon --headless` looked accepted, and a
    demo's `--manual --headless` still advanced by itself.
    """
    if args.command not in ("run", "demo"):
        return ""
    if not args.headless:
        if args.json:
            return "--json needs --headless (the console has no event stream to print)"
        return _unknown_theme(args.theme) if args.theme is not None else ""
    if args.command == "demo" and args.watch:
        return ("--watch and --headless do not go together for a demo (its watch mode is "
                "a screen); drop one of them")
    ignored = [
        ("--theme", args.theme is not None, "there is no screen to colour"),
        ("--no-mouse", args.no_mouse, "there is no screen to click"),
        ("--manual", getattr(args, "manual", False),
         "a headless run advances by itself on passing gates"),
    ]
    for option, given, why in ignored:
        if given:
            return f"{option} does nothing with --headless ({why}); drop one of them"
    return ""


def _unknown_theme(name: str) -> str:
    """One line naming the themes when `name` is not one of them ("" when it is)."""
    from relconsole.suggest import did_you_mean
    from relconsole.tui.themes import PREFIX, ThemeError, load_themes, offered, resolve_name

    try:
        names = offered(load_themes())
    except ThemeError as exc:
        return str(exc)
    if resolve_name(name, set(names)) is not None:
        return ""
    short = [n.removeprefix(PREFIX) for n in names]
    hint = did_you_mean(name.removeprefix(PREFIX), short, inline=True)
    return f"unknown theme {name!r}{hint}: choose one of {', '.join(short)}"


COMMANDS = {
    "demo": cmd_demo,
    "run": cmd_run,
    "check": cmd_check,
    "status": cmd_status,
    "advance": cmd_intent,
    "pause": cmd_intent,
    "resume": cmd_intent,
    "promote": cmd_intent,
    "rollback": cmd_intent,
    "flags": cmd_flags,
    "flag": cmd_flag,
    "migrate": cmd_migrate,
    "releases": cmd_releases,
    "fleet": cmd_fleet,
    "journal": cmd_journal,
    "plan": cmd_plan,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    code: int = ExitCode.OK
    try:
        code = _main(argv)
        # Output to a pipe is buffered: a reader that went away (`| head -1`) shows here.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of our output went away: its choice, not an error to report. A
        # headless run has already paused its release (see headless.Output).
        silence(sys.stdout)
    return code


class _ReaderMayLeave(io.TextIOBase):
    """Stdout for a one-shot command: once its reader has gone (`| head -1`), writes go
    nowhere instead of failing, so the command finishes and exits with its own code
    (`flags --audit` still says 1 when it found something)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._went()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._went()

    def _went(self) -> None:
        self.gone = True
        silence(self.stream)

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "demo"):
        # The front ends mind their own stdout: a terminal, or headless.Output.
        return _run_command(args)
    stdout = sys.stdout
    sys.stdout = cast(TextIO, _ReaderMayLeave(stdout))
    try:
        return _run_command(args)
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _run_command(args: argparse.Namespace) -> int:
    try:
        misused = _misused_option(args)
        if misused:
            raise CliError(misused, ExitCode.USAGE)
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        _complain(f"relconsole: {exc}")
        return ExitCode.USAGE
    except CliError as exc:
        _complain(f"relconsole: {exc}")
        return exc.code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        raise
    except Exception as exc:
        if os.environ.get("RELCONSOLE_DEBUG"):
            raise
        _complain(f"relconsole: internal error: {type(exc).__name__}: {exc} "
                  "(set RELCONSOLE_DEBUG=1 for a traceback)")
        return ExitCode.ERROR


def _complain(text: str) -> None:
    try:
        print(text, file=sys.stderr)
    except BrokenPipeError:
        silence(sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
