"""The journal is the audit trail of a release: what was written must survive, and any
later tampering or loss must be visible to `relconsole journal --verify`."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relconsole.clock import FastClock
from relconsole.engine.journal import (
    Journal,
    JournalError,
    head_path,
    journal_path,
    render_markdown,
    verify,
)
from relconsole.engine.journal import store as journal_mod
from relconsole.engine.paths import current_actor, state_dir
from relconsole.model import Actor

ALICE = Actor("alice", "bastion-1", "10.0.0.5")
BOB = Actor("bob", "bastion-2")
RELEASE = "checkout-api-2.3.0-production"
FIELDS = [
    "seq",
    "ts",
    "time",
    "release",
    "actor",
    "intent",
    "reason",
    "before",
    "after",
    "outcome",
    "data",
    "prev",
]


@pytest.fixture
def clock() -> FastClock:
    return FastClock()  # 2026-01-01T00:00:00Z


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return journal_path(tmp_path / "state", RELEASE)


def open_journal(path: Path, clock: FastClock, **kw: object) -> Journal:
    return Journal(path, clock, ALICE, release=RELEASE, **kw)  # type: ignore[arg-type]


def write_history(path: Path, clock: FastClock, n: int) -> Journal:
    j = open_journal(path, clock)
    for i in range(n):
        clock.advance(10)
        j.append("advance", reason=f"step {i}", before={"step": i}, after={"step": i + 1})
    return j


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def rewrite(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_append_writes_one_json_line_per_record_in_the_documented_field_order(
    path: Path, clock: FastClock
) -> None:
    j = open_journal(path, clock)
    rec = j.append(
        "advance",
        reason="bake ok",
        before={"phase": "progressing", "step": 0, "weight": 1},
        after={"phase": "progressing", "step": 1, "weight": 10},
    )
    clock.advance(2.5)
    done = j.append("advance", outcome="verified", actor=BOB, data={"weight_read_back": 10})

    raw = lines_of(path)
    assert len(raw) == 2
    assert list(json.loads(raw[0])) == FIELDS
    assert json.loads(raw[0]) == rec
    assert rec["seq"] == 1 and done["seq"] == 2
    assert rec["time"] == "2026-01-01T00:00:00.000Z"
    assert done["ts"] == clock.now()
    assert rec["actor"] == {"user": "alice", "host": "bastion-1", "ssh_client": "10.0.0.5"}
    assert done["actor"]["user"] == "bob"  # an explicit actor overrides the journal's
    assert rec["outcome"] is None and done["outcome"] == "verified"
    assert rec["prev"] == "0" * 64
    assert j.records() == [rec, done]
    assert j.last() == done
    # Compact and not ASCII-escaped, so the file reads naturally in `less`.
    assert raw[0].startswith('{"seq":1,"ts":')


def test_unicode_reason_is_stored_readably(path: Path, clock: FastClock) -> None:
    open_journal(path, clock).append("pause", reason="latence élevée — à vérifier")
    assert "latence élevée — à vérifier" in path.read_text(encoding="utf-8")


def test_records_survive_reopening_and_the_chain_continues(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 3)
    again = open_journal(path, clock)
    rec = again.append("pause", reason="lunch")
    assert rec["seq"] == 4
    assert [r["seq"] for r in again.records()] == [1, 2, 3, 4]
    assert verify(path).ok


def test_verify_accepts_a_clean_journal(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 5)
    result = verify(path)
    assert result.ok, result.problems
    assert result.count == 5
    assert result.problems == []


def test_editing_a_middle_record_is_reported_with_its_line_number(
    path: Path, clock: FastClock
) -> None:
    write_history(path, clock, 5)
    lines = lines_of(path)
    lines[2] = lines[2].replace('"reason":"step 2"', '"reason":"nothing to see"')
    rewrite(path, lines)

    result = verify(path)
    assert not result.ok
    assert result.problems == ["line 3: record edited (hash chain broken)"]


def test_editing_the_last_record_is_caught_by_the_head_file(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 3)
    lines = lines_of(path)
    lines[-1] = lines[-1].replace('"reason":"step 2"', '"reason":"all good"')
    rewrite(path, lines)
    assert verify(path).problems == ["line 3: record edited (does not match head)"]


def test_deleting_a_middle_record_is_reported(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 5)
    lines = lines_of(path)
    del lines[2]  # seq 3
    rewrite(path, lines)

    result = verify(path)
    assert not result.ok
    assert result.count == 4
    assert result.problems == ["line 3: record missing (seq 4 after 2)"]


def test_deleting_the_last_record_is_reported_via_the_head_file(
    path: Path, clock: FastClock
) -> None:
    write_history(path, clock, 5)
    rewrite(path, lines_of(path)[:-1])

    result = verify(path)
    assert not result.ok
    assert result.problems == ["last record deleted (head says seq 5, file ends at 4)"]


def test_deleting_the_head_file_is_itself_reported(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 2)
    head_path(path).unlink()
    assert not verify(path).ok
    assert "missing" in verify(path).problems[0]


def test_a_crash_before_the_head_update_is_not_a_false_alarm(
    path: Path, clock: FastClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = write_history(path, clock, 2)
    # The record reached the disk, then the process died before rewriting the head.
    monkeypatch.setattr(Journal, "_update_head", lambda self: None)
    j.append("pause", reason="about to crash")
    assert json.loads(head_path(path).read_text())["seq"] == 2
    assert verify(path).ok, verify(path).problems


def test_verify_of_a_missing_journal_is_not_ok(tmp_path: Path) -> None:
    result = verify(tmp_path / "nope.jsonl")
    assert not result.ok and "no journal" in result.problems[0]


def test_a_truncated_last_line_is_repaired_on_open_and_the_rest_verifies(
    path: Path, clock: FastClock
) -> None:
    write_history(path, clock, 3)
    good = path.read_bytes()
    half = b'{"seq":4,"ts":1767225640.0,"time":"2026-01-01T00:00:40.000Z","rele'
    path.write_bytes(good + half)  # the process died in the middle of os.write

    before = verify(path)
    assert not before.ok
    assert before.count == 3
    assert before.problems == [
        f"line 4: incomplete last record ({len(half)} bytes, no newline; a crash mid-write?)"
    ]

    j = open_journal(path, clock)
    assert len(j.warnings) == 1 and "incomplete" in j.warnings[0]
    saved = list(path.parent.glob(f"{path.name}.broken-*"))
    assert len(saved) == 1 and saved[0].read_bytes() == half  # nothing is thrown away
    assert path.read_bytes() == good
    assert verify(path).ok

    rec = j.append("pause", reason="after the crash")
    assert rec["seq"] == 4
    assert verify(path).ok, verify(path).problems


def test_a_last_line_of_garbage_with_a_newline_is_also_repaired(
    path: Path, clock: FastClock
) -> None:
    write_history(path, clock, 2)
    with path.open("ab") as f:
        f.write(b"\0\0\0\0\n")  # zeroed block after a power loss
    j = open_journal(path, clock)
    assert j.warnings
    assert j.append("pause")["seq"] == 3
    assert verify(path).ok


def test_a_watch_only_journal_never_modifies_the_file(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 2)
    with path.open("ab") as f:
        f.write(b'{"seq":3,')  # maybe the driver is writing right now
    content = path.read_bytes()
    watcher = open_journal(path, clock, read_only=True)
    assert [r["seq"] for r in watcher.records()] == [1, 2]
    assert watcher.warnings
    assert path.read_bytes() == content


def test_read_only_journal_refuses_to_append(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 1)
    watcher = open_journal(path, clock, read_only=True)
    with pytest.raises(JournalError, match=r"^watch-only: "):
        watcher.append("advance", reason="sneaky")
    assert len(lines_of(path)) == 1


def test_disk_full_gives_a_clear_error_and_leaves_no_half_record(
    path: Path, clock: FastClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = write_history(path, clock, 2)
    before = path.read_bytes()
    real_write = os.write
    calls = {"n": 0}

    def write_then_fill_disk(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:10]))  # part of the line got out...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ...then the disk filled

    monkeypatch.setattr(journal_mod.os, "write", write_then_fill_disk)
    with pytest.raises(JournalError, match="disk full") as err:
        j.append("rollback", reason="errors")
    assert str(path) in str(err.value)
    assert path.read_bytes() == before

    monkeypatch.setattr(journal_mod.os, "write", real_write)
    assert j.append("rollback", reason="errors")["seq"] == 3
    assert verify(path).ok


def test_unwritable_location_gives_a_journal_error(tmp_path: Path, clock: FastClock) -> None:
    # chmod cannot stop root, so make the parent "directory" a regular file instead.
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    with pytest.raises(JournalError, match=r"cannot open journal .*not a directory"):
        open_journal(journal_path(blocker, RELEASE), clock)


def test_journal_files_are_private(path: Path, clock: FastClock) -> None:
    old = os.umask(0o022)
    try:
        write_history(path, clock, 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(head_path(path).stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_state_dir_is_created_private_and_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    assert stat.S_IMODE(state_dir(loose).stat().st_mode) == 0o700

    monkeypatch.setenv("RELCONSOLE_STATE_DIR", str(tmp_path / "from-env"))
    made = state_dir()
    assert made == tmp_path / "from-env"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_current_actor_names_the_ssh_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CLIENT", "192.0.2.7 51234 22")
    assert current_actor().ssh_client == "192.0.2.7"
    monkeypatch.delenv("SSH_CLIENT")
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.9 40000 10.0.0.1 22")
    assert current_actor().ssh_client == "198.51.100.9"
    monkeypatch.delenv("SSH_CONNECTION")
    assert current_actor().ssh_client is None
    assert current_actor().user


def test_poll_new_sees_records_from_another_writer(path: Path, clock: FastClock) -> None:
    driver = write_history(path, clock, 1)
    watcher = open_journal(path, clock, read_only=True)
    assert watcher.poll_new() == []

    driver.append("advance", reason="bake ok")
    driver.append("advance", outcome="verified")
    assert [r["seq"] for r in watcher.poll_new()] == [2, 3]
    assert watcher.poll_new() == []

    # A second writable instance (say, a one-shot CLI command) continues the same chain.
    other = open_journal(path, clock)
    other.append("pause", reason="from the CLI")
    assert driver.append("resume")["seq"] == 5
    assert [r["intent"] for r in watcher.poll_new()] == ["pause", "resume"]
    assert [r["intent"] for r in driver.poll_new()][-2:] == ["pause", "resume"]
    assert verify(path).ok, verify(path).problems


def test_poll_new_waits_for_a_line_to_be_complete(path: Path, clock: FastClock) -> None:
    write_history(path, clock, 1)
    watcher = open_journal(path, clock, read_only=True)
    line = json.dumps({"seq": 2, "intent": "pause"}).encode()
    with path.open("ab") as f:
        f.write(line[:5])
    assert watcher.poll_new() == []
    with path.open("ab") as f:
        f.write(line[5:] + b"\n")
    assert [r["intent"] for r in watcher.poll_new()] == ["pause"]


def test_poll_new_on_a_journal_that_does_not_exist_yet(path: Path, clock: FastClock) -> None:
    watcher = open_journal(path, clock, read_only=True)
    assert watcher.poll_new() == [] and watcher.records() == []
    open_journal(path, clock).append("attach")
    assert [r["intent"] for r in watcher.poll_new()] == ["attach"]


class Secret:
    """Stands in for relconsole.config.Secret: its str() hides the value."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return "***"


def test_unknown_objects_are_written_by_their_str_so_secrets_stay_hidden(
    path: Path, clock: FastClock
) -> None:
    j = open_journal(path, clock)
    rec = j.append("attach", data={"token": Secret("hunter2"), "error_rate": float("nan")})
    text = path.read_text()
    assert "hunter2" not in text
    assert rec["data"]["token"] == "***"
    assert "NaN" not in text  # bare NaN is not JSON other tools can read
    assert rec["data"]["error_rate"] == "nan"


@pytest.fixture
def india_time() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "IST-5:30"  # POSIX form: needs no tz database
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.usefixtures("india_time")
def test_render_markdown_shows_local_times_people_reasons_and_gate_values(
    path: Path, clock: FastClock
) -> None:
    j = open_journal(path, clock)
    j.append("attach")
    clock.advance(3723)  # 01:02:03 UTC
    j.append(
        "rollback",
        reason="error rate | above threshold",
        before={"phase": "progressing", "weight": 10},
        after={"phase": "rolled_back", "weight": 0},
        outcome="verified",
        data={
            "gates": [
                {
                    "gate": "error_rate",
                    "verdict": "fail",
                    "canary": 0.0523,
                    "baseline": 0.001,
                    "threshold": "≤0.01",
                }
            ]
        },
    )
    md = render_markdown(j.records(), "checkout-api 2.3.0")
    assert md.startswith("# checkout-api 2.3.0\n")
    assert "2026-01-01 (UTC+05:30)" in md
    assert "| 05:30:00 |" in md and "| 06:32:03 |" in md  # local, not UTC
    assert "alice@bastion-1 (ssh from 10.0.0.5)" in md
    assert "error rate \\| above threshold" in md  # a pipe must not break the table
    assert "phase progressing→rolled_back, weight 10→0" in md
    assert "verified" in md
    assert "error_rate fail: canary 0.0523, baseline 0.001 (≤0.01)" in md
    row = next(line for line in md.splitlines() if line.startswith("| 2 |"))
    assert row.count(" | ") == 7  # still eight columns


def test_render_markdown_of_an_empty_journal() -> None:
    assert "No records" in render_markdown([], "x")


WRITER = """
import sys, time
from pathlib import Path
from relconsole.clock import SystemClock
from relconsole.engine.journal import Journal
from relconsole.model import Actor

go = Path(sys.argv[3])
while not go.exists():  # start both writers at the same moment
    time.sleep(0.001)
j = Journal(Path(sys.argv[1]), SystemClock(), Actor(sys.argv[2], "h"), release="r")
for i in range(200):
    j.append("note", reason=f"{sys.argv[2]} {i}")
"""


def test_two_processes_appending_at_once_keep_one_unbroken_chain(
    path: Path, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(go)])
        for name in ("one", "two")
    ]
    time.sleep(0.5)  # let both interpreters start and wait at the line
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    result = verify(path)
    assert result.ok, result.problems
    assert result.count == 400
