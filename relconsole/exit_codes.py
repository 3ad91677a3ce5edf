"""The process exit codes of the Commands contract (docs/design.md), in one table.

Pipelines branch on these numbers, so the headless run, the one-shot commands and the
TUI's hang-up exit all take them from here rather than spelling their own.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # success; headless: promoted to 100%
    ERROR = 1  # an internal error, or an action that was refused or not verified
    USAGE = 2  # bad usage or a bad config file
    ROLLED_BACK = 3  # headless: the release was rolled back (and it was verified)
    PAUSED = 4  # headless: left paused for a human (inconclusive data, lease lost, ...)
    HANGUP = 129  # 128 + SIGHUP: the terminal went away under the TUI
    INTERRUPTED = 130  # 128 + SIGINT: stopped; the release is left paused where it stands
