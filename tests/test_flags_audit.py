"""Flag hygiene: `relconsole flags --audit` and the per-flag findings behind it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relconsole import flags_audit
from relconsole.model import DAY, Flag, FlagAuditPolicy, FlagKind

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_767_225_600.0


def iso(days_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days_ago * DAY))


def flag(*, owner: str = "payments-team", description: str = "why it exists",
         kind: str = "release", created: float = 3, rollout: int | None = 50,
         last_changed: float | None = None, expiry: float | None = None,
         state: str = "ENABLED") -> dict:
    meta: dict = {"type": kind, "createdAt": iso(created)}
    if owner:
        meta["owner"] = owner
    if description:
        meta["description"] = description
    if last_changed is not None:
        meta["lastChanged"] = iso(last_changed)
    if expiry is not None:
        meta["expiry"] = iso(expiry)
    body: dict = {"state": state, "variants": {"on": True, "off": False},
                  "defaultVariant": "on" if rollout is None else "off", "metadata": meta}
    if rollout is not None:
        body["targeting"] = {"fractional": [["on", rollout], ["off", 100 - rollout]]}
    return body


PROBLEMS = {
    "checkout-old-release": (flag(created=60), "lifetime"),
    "checkout-settled-release": (flag(created=20, rollout=None, last_changed=20), "full-on"),
    "checkout-hundred-release": (flag(created=30, rollout=100, last_changed=16), "full-on"),
    "checkout-orphan-release": (flag(owner=""), "unowned"),
    "checkout-mystery-release": (flag(description=""), "undocumented"),
    "checkout-expired-release": (flag(expiry=1), "expired"),
    "CheckoutBadName": (flag(), "naming"),
}
CLEAN = {
    "checkout-pricing-release": flag(),
    "checkout-recent-release": flag(created=20, rollout=None, last_changed=2),
    # Kill switches and permissions never expire, and being on is their resting state.
    "checkout-pricing-killswitch": flag(kind="kill-switch", created=400, rollout=None,
                                        last_changed=300),
    "admin-refund-permission": flag(kind="permission", created=400, rollout=None),
    "payments-3ds-ops": flag(kind="operational", created=2),
}


def write_config(tmp_path: Path, flags: dict) -> Path:
    (tmp_path / "flags.json").write_text(json.dumps({"flags": flags}, indent=2))
    cfg = tmp_path / "relconsole.yaml"
    cfg.write_text(f"""
release:
  service: checkout-api
  version: 2.3.0
  environment: staging
  steps: [{{weight: 100}}]
providers:
  traffic: {{type: sim}}
  flags: {{type: flagd, path: {tmp_path / 'flags.json'}}}
state: {{dir: {tmp_path / 'state'}}}
""")
    return cfg


def audit_cli(cfg: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "relconsole", "flags", "--audit", "-c", str(cfg), *extra],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ),
    )


def test_one_flag_of_each_problem_gives_exactly_those_findings_and_exit_1(tmp_path):
    cfg = write_config(tmp_path, {**CLEAN, **{k: v for k, (v, _) in PROBLEMS.items()}})
    done = audit_cli(cfg, "--json")
    assert done.returncode == 1, done.stderr
    found = {(f["key"], f["check"]) for f in json.loads(done.stdout)}
    assert found == {(k, check) for k, (_, check) in PROBLEMS.items()}

    table = audit_cli(cfg)
    assert table.returncode == 1
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["flag", "check", "finding"]
    assert any("checkout-old-release" in x and "lifetime" in x and "40 days" in x
               for x in lines)
    assert lines[-1] == f"{len(PROBLEMS)} finding(s) on {len(PROBLEMS)} flag(s)"


def test_a_clean_set_exits_0(tmp_path):
    done = audit_cli(write_config(tmp_path, CLEAN))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("no findings")
    assert audit_cli(write_config(tmp_path, CLEAN), "--json").stdout.strip() == "[]"


def test_the_policy_comes_from_the_config(tmp_path):
    cfg = write_config(tmp_path, {"checkout-old-release": flag(created=60),
                                  "team_flag": flag()})
    cfg.write_text(cfg.read_text() + """
flags_audit:
  lifetime_days: {release: never}
  naming: '^[a-z_]+$'
""")
    found = {(f["key"], f["check"]) for f in json.loads(audit_cli(cfg, "--json").stdout)}
    assert found == {("checkout-old-release", "naming")}


def test_a_bad_audit_section_names_file_line_and_key(tmp_path):
    cfg = write_config(tmp_path, CLEAN)
    cfg.write_text(cfg.read_text() + "flags_audit:\n  lifetime_days: {relase: 10}\n")
    line = cfg.read_text().splitlines().index("  lifetime_days: {relase: 10}") + 1
    done = audit_cli(cfg)
    assert done.returncode == 2
    assert f"{cfg}:{line}: flags_audit.lifetime_days.relase: unknown flag type 'relase'" \
        in done.stderr
    assert "Did you mean 'release'?" in done.stderr


def test_flags_listing_shows_age_and_audit_marker(tmp_path):
    cfg = write_config(tmp_path, {**CLEAN, "checkout-old-release": flag(created=60)})
    done = subprocess.run([sys.executable, "-m", "relconsole", "flags", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0
    old = next(x for x in done.stdout.splitlines() if "checkout-old-release" in x)
    assert "60d" in old and " L " in old
    rows = json.loads(subprocess.run(
        [sys.executable, "-m", "relconsole", "flags", "--json", "-c", str(cfg)],
        capture_output=True, text=True, timeout=60, cwd=ROOT).stdout)
    assert next(r for r in rows if r["key"] == "checkout-old-release")["audit"] == ["lifetime"]


# ---------------------------------------------------------------------- the pure functions


@pytest.mark.parametrize(
    ("kind", "days", "expect"),
    [
        (FlagKind.RELEASE, 39, False), (FlagKind.RELEASE, 41, True),
        (FlagKind.EXPERIMENT, 41, True), (FlagKind.OPERATIONAL, 8, True),
        (FlagKind.OPERATIONAL, 6, False), (FlagKind.KILL_SWITCH, 4000, False),
        (FlagKind.PERMISSION, 4000, False),
    ],
)
def test_lifetimes_by_type_are_unleash_defaults(kind, days, expect):
    f = Flag("svc-x-release", kind, True, 50, "o", "d", created=NOW - days * DAY)
    checks = [x.check for x in flags_audit.audit_flag(f, FlagAuditPolicy(), NOW)]
    assert ("lifetime" in checks) is expect


def test_unknown_times_are_never_guessed():
    f = Flag("svc-x-release", FlagKind.RELEASE, True, None, "o", "d")
    assert flags_audit.audit_flag(f, FlagAuditPolicy(), NOW) == []


def test_findings_by_key_and_marker_for_the_console():
    flags = [Flag("Bad", FlagKind.RELEASE, True, None, "", "d", expires=NOW - DAY),
             Flag("svc-ok-release", FlagKind.RELEASE, True, 10, "o", "d")]
    findings = flags_audit.audit(flags, FlagAuditPolicy(), NOW)
    grouped = flags_audit.findings_by_key(findings)
    assert set(grouped) == {"Bad"}
    assert flags_audit.marker(grouped["Bad"]) == "EON"
    assert flags_audit.marker(()) == ""
