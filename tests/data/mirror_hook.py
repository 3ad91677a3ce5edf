"""A stand-in for a team's proxy script, for the command provider's shadow tests.

    mirror_hook.py set-mirror PERCENT   copy PERCENT% of live requests to the canary
    mirror_hook.py set-weight WEIGHT    send WEIGHT% of live requests to the canary
    mirror_hook.py status               print {"canary_weight": W, "mirror": M}

The proxy's state is the JSON file $MIRROR_STATE; every call is appended to
$MIRROR_STATE.calls (one JSON argv a line). Faults, for the tests:
$MIRROR_HOOK_IGNORE names a command that exits 0 and changes nothing (a proxy that did
not take the change); a file $MIRROR_STATE.status-fails makes the next status fail once.
No shell is involved: the provider starts this with its argv as given.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    state = Path(os.environ["MIRROR_STATE"])
    with open(f"{state}.calls", "a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    now = json.loads(state.read_text()) if state.exists() else {"canary_weight": 0,
                                                                "mirror": 0}
    command = argv[0] if argv else ""
    if command == "status":
        fails = Path(f"{state}.status-fails")
        if fails.exists():
            fails.unlink()
            print("proxy admin socket: connection refused", file=sys.stderr)
            return 1
        print(json.dumps(now))
        return 0
    if command not in ("set-mirror", "set-weight") or len(argv) != 2:
        print(f"usage: mirror_hook.py set-mirror|set-weight N|status, got {argv}",
              file=sys.stderr)
        return 2
    value = int(argv[1])
    if os.environ.get("MIRROR_HOOK_IGNORE") != command:
        now["mirror" if command == "set-mirror" else "canary_weight"] = value
        state.write_text(json.dumps(now))
    print(f"{command} {value}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
