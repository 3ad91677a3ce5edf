"""Time from `relconsole demo` to its first frame in a real terminal (tmux), and its RSS.

Run by hand or with `make bench`; needs tmux. Prints numbers, asserts nothing.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.tmux_helpers import TmuxConsole, pane_children


def one(size: tuple[int, int]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        console = TmuxConsole(["demo", "--scenario", "healthy", "--manual"], size=size,
                              env={"RELCONSOLE_STATE_DIR": tmp, "TERM": "xterm-256color"})
        try:
            console.wait_for(lambda s: "checkout-api" in s and "Gates" in s, timeout=30)
            first = time.monotonic() - console.started
            time.sleep(2)
            (pid,) = pane_children(console)
            rss_kb = next(int(line.split()[1]) for line in
                          Path(f"/proc/{pid}/status").read_text().splitlines()
                          if line.startswith("VmRSS"))
        finally:
            console.close()
    return first, rss_kb


def main() -> None:
    for size in ((120, 40), (80, 24)):
        runs = [one(size) for _ in range(5)]
        frames = [r[0] for r in runs]
        print(f"{size[0]}x{size[1]}: first frame median {statistics.median(frames):.2f}s "
              f"(min {min(frames):.2f}s, max {max(frames):.2f}s), "
              f"RSS after 2 s {statistics.median(r[1] for r in runs) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
