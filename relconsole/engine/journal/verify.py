"""Checks a journal's hash chain, sequence numbers and head file (`journal --verify`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from relconsole.engine.journal.store import (
    GENESIS,
    explain_os_error,
    head_path,
    parse_line,
    seq_of,
    sha256_hex,
    split_lines,
)


@dataclass
class VerifyResult:
    ok: bool
    count: int  # readable records
    problems: list[str] = field(default_factory=list)


def verify(path: Path) -> VerifyResult:
    """Check the hash chain, the sequence numbers and the head file of a journal."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return VerifyResult(False, 0, [f"no journal at {path}"])
    except OSError as exc:
        return VerifyResult(False, 0, [f"cannot read {path}: {explain_os_error(exc)}"])

    lines, tail = split_lines(data)
    problems: list[str] = []
    count = 0
    prev_hash = GENESIS
    prev_seq: int | None = 0
    prev_readable = True
    last_good: tuple[int, str] | None = None  # (seq, sha) of the last readable record

    for lineno, raw in enumerate(lines, 1):
        rec = parse_line(raw)
        line_hash = sha256_hex(raw)
        if rec is None:
            final = lineno == len(lines) and not tail
            problems.append(
                f"line {lineno}: last record is not valid JSON (a crash mid-write?)"
                if final
                else f"line {lineno}: not valid JSON (record damaged)"
            )
            prev_hash, prev_seq, prev_readable = line_hash, None, False
            continue
        count += 1
        seq = seq_of(rec)
        if seq is None:
            problems.append(f"line {lineno}: record has no sequence number")
        elif prev_seq is not None and seq != prev_seq + 1:
            if lineno == 1:
                problems.append(f"line 1: records missing at the start (first seq is {seq})")
            elif seq > prev_seq + 1:
                gap = seq - prev_seq - 1
                what = "record missing" if gap == 1 else f"{gap} records missing"
                problems.append(f"line {lineno}: {what} (seq {seq} after {prev_seq})")
            else:
                problems.append(f"line {lineno}: out of order (seq {seq} after {prev_seq})")
        elif prev_readable and rec.get("prev") != prev_hash:
            # The record before changed after this one was chained to it.
            problems.append(
                "line 1: record edited (first record must start the chain)"
                if lineno == 1
                else f"line {lineno - 1}: record edited (hash chain broken)"
            )
        prev_hash, prev_seq, prev_readable = line_hash, seq, True
        if seq is not None:
            last_good = (seq, line_hash)

    if tail:
        problems.append(
            f"line {len(lines) + 1}: incomplete last record ({len(tail)} bytes, no newline; "
            "a crash mid-write?)"
        )
    problems.extend(_check_head(head_path(path), lines, last_good, count))
    return VerifyResult(not problems, count, problems)


def _check_head(
    head: Path, lines: list[bytes], last_good: tuple[int, str] | None, count: int
) -> list[str]:
    """The chain cannot notice its own end being cut off; the head file can."""
    try:
        info = json.loads(head.read_bytes())
        head_seq, head_sha = int(info["seq"]), str(info["sha256"])
    except FileNotFoundError:
        if count:
            return [
                f"head file {head.name} missing: cannot tell whether the last records were deleted"
            ]
        return []
    except (OSError, ValueError, KeyError, TypeError):
        return [f"head file {head.name} unreadable or damaged"]

    file_seq = last_good[0] if last_good else 0
    if head_seq > file_seq:
        gap = head_seq - file_seq
        what = "last record deleted" if gap == 1 else f"last {gap} records deleted"
        return [f"{what} (head says seq {head_seq}, file ends at {file_seq})"]
    if head_seq == file_seq:
        if last_good and head_sha != last_good[1]:
            return [f"line {_line_of(lines, file_seq)}: record edited (does not match head)"]
        return []
    # A crash between writing a record and updating the head leaves it one behind.
    if head_seq == file_seq - 1 and _hash_of_seq(lines, head_seq) == head_sha:
        return []
    return [f"head out of date (head says seq {head_seq}, file ends at {file_seq})"]


def _line_of(lines: list[bytes], seq: int) -> int:
    for lineno in range(len(lines), 0, -1):
        if seq_of(parse_line(lines[lineno - 1])) == seq:
            return lineno
    return len(lines)


def _hash_of_seq(lines: list[bytes], seq: int) -> str | None:
    for raw in reversed(lines):
        if seq_of(parse_line(raw)) == seq:
            return sha256_hex(raw)
    return None
