"""End to end in a real terminal: what an on-call engineer actually sees."""

from __future__ import annotations

import json
import time

import pytest

from tests.tmux_helpers import TmuxConsole, alive, pane_children

pytestmark = pytest.mark.tmux


@pytest.fixture
def console_factory(tmp_path):
    consoles: list[TmuxConsole] = []

    def make(*args: str, size: tuple[int, int] = (120, 40)) -> TmuxConsole:
        console = TmuxConsole(
            list(args), size=size,
            env={"RELCONSOLE_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color",
                 "TZ": "UTC"},
        )
        consoles.append(console)
        return console

    yield make
    for console in consoles:
        console.close()


def test_bad_canary_rolls_back_by_itself_and_says_why(console_factory):
    console = console_factory("demo", "--scenario", "bad-canary", "--speed", "30")
    first = console.wait_for(lambda s: "checkout-api" in s, timeout=20)
    first_frame = time.monotonic() - console.started
    assert "DRIVE" in first
    screen = console.wait_for(lambda s: "ROLLED BACK" in s, timeout=60)
    assert "error_rate" in screen  # the gate that tripped, on screen
    assert "rolled back" in screen.lower()
    console.keys("q")
    console.wait_for(lambda s: "EXITED=0" in s, timeout=15)
    print(f"first frame after {first_frame:.2f}s")


def test_healthy_release_driven_to_100_percent_with_keys(console_factory):
    console = console_factory("demo", "--scenario", "healthy", "--manual", "--speed", "30",
                              size=(80, 24))
    console.wait_for(lambda s: "checkout-api" in s, timeout=20)
    console.keys("a")  # pending → 1 %
    # The verified outcome is shown once the action has finished; only then is the
    # console free for the next one (a second action meanwhile gets a "still running").
    console.wait_for(lambda s: "canary at 1% (verified)" in s, timeout=15)
    console.keys("P")  # promote: asks for confirmation
    console.wait_for(lambda s: "Promote checkout-api" in s, timeout=10)
    # Production: past the optional reason, the service's name typed out.
    console.keys("Enter", "checkout-api", "Enter")
    screen = console.wait_for(lambda s: "PROMOTED" in s, timeout=20)
    assert "100" in screen
    console.keys("q")
    console.wait_for(lambda s: "EXITED=0" in s, timeout=15)


def test_terminal_hang_up_exits_within_5s_and_leaves_the_release_as_it_was(
    console_factory, tmp_path
):
    console = console_factory("demo", "--scenario", "healthy", "--manual", "--speed", "1")
    console.wait_for(lambda s: "checkout-api" in s, timeout=20)
    console.keys("a")
    console.wait_for(lambda s: "canary at 1% (verified)" in s, timeout=15)
    (pid,) = pane_children(console)
    console.close()  # the terminal goes away, as when an SSH link drops: SIGHUP
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the console must exit within 5 s of the terminal going away"
    demo_state = tmp_path / "state" / "demo"
    world = json.loads(next(demo_state.glob("sim-*.json")).read_text())
    assert world["weight"] == 1  # exactly where the operator left it
    journal = next((demo_state / "journal").glob("*.jsonl")).read_text()
    assert journal.endswith("\n")
    assert all(json.loads(line) for line in journal.splitlines())


def test_resizing_the_real_terminal_down_to_60x20_and_back_keeps_the_console_alive(tmp_path):
    import subprocess

    # A shell that exported COLUMNS/LINES (bash profiles do; panes started under pytest
    # carry 80/24): Textual's size probe prefers them over the terminal, so without
    # relconsole dropping them every resize re-drew an 80×24 layout.
    console = TmuxConsole(
        ["demo", "--scenario", "healthy", "--manual", "--speed", "1"],
        env={"RELCONSOLE_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color",
             "TZ": "UTC", "COLUMNS": "80", "LINES": "24"},
    )
    try:
        console.wait_for(lambda s: "checkout-api" in s, timeout=20)
        (pid,) = pane_children(console)
        console.keys("a")
        console.wait_for(lambda s: "canary at 1% (verified)" in s, timeout=15)

        def resize(width: int, height: int) -> None:
            subprocess.run([console.tmux, "-L", console.socket, "resize-window", "-t",
                            console.name, "-x", str(width), "-y", str(height)], check=True)

        timings = {}
        for width, height in [(80, 24), (60, 20), (40, 12), (120, 40)]:
            started = time.monotonic()
            resize(width, height)

            small = width < 60 or height < 20

            def redrawn(screen: str, height: int = height, width: int = width,
                        small: bool = small) -> bool:
                # tmux only crops (keeping the bottom rows) or pads the old frame; a frame
                # drawn for the new size has the header on top and the key bar at the bottom.
                if small:  # below the minimum the console says so, in words
                    return f"Terminal too small: {width}×{height}" in screen
                lines = screen.rstrip("\n").split("\n")
                return (len(lines) == height and lines[0].startswith(" checko")
                        and lines[-1].startswith(" a advance"))

            screen = console.wait_for(redrawn, timeout=10)
            timings[(width, height)] = time.monotonic() - started
            assert alive(pid), f"the console died at {width}x{height}"
            assert "EXITED=" not in screen and "Traceback" not in screen
            if small:
                # Where the release stands is still said, and that it is not affected.
                assert "PROGRESSING · canary 1%" in screen, screen
                assert "The release is not affected" in screen, screen
                continue
            header = "\n".join(screen.split("\n")[:2])
            assert "PROGRESSING" in header, screen
            assert "canary 1%" in header, screen
            assert max(len(line.rstrip()) for line in screen.split("\n")) <= width
        # Still responsive after all that: pause (Enter accepts the optional reason).
        console.keys("p")
        console.wait_for(lambda s: "Pause the release?" in s, timeout=10)
        console.keys("Enter")
        console.wait_for(lambda s: "PAUSED" in s, timeout=15)
        console.keys("q")  # it drives a paused release: it asks how to leave it
        console.wait_for(lambda s: "Quit while this console drives" in s, timeout=10)
        console.keys("Up", "Enter")  # from Cancel up to "leave it PAUSED"
        console.wait_for(lambda s: "EXITED=0" in s, timeout=15)
    finally:
        console.close()
    print("redraw after resize: " + ", ".join(f"{w}x{h} {t:.2f}s"
                                              for (w, h), t in timings.items()))
