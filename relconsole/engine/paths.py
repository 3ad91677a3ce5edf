"""Where relconsole keeps its own state (journals, leases) and who is running it.

The state directory holds the audit trail and the lock that decides who drives a
release, so it is private to the user (0700): another local user must not be able to
edit the journal or fake a lease.
"""

from __future__ import annotations

import getpass
import os
import socket
import stat
from pathlib import Path

import platformdirs

from relconsole.model import Actor

STATE_DIR_ENV = "RELCONSOLE_STATE_DIR"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and its parents) and make sure only the owner can enter it.

    Only the last component is tightened: parents such as ~/.local/state belong to
    the user's wider setup. A directory we do not own, or a shared sticky directory
    like /tmp, is left alone — chmod-ing it would break other users, not protect us.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    looser = stat.S_IMODE(st.st_mode) & 0o077
    shared = st.st_mode & stat.S_ISVTX
    if looser and not shared and st.st_uid == os.geteuid():
        path.chmod(0o700)
    return path


def state_dir(override: Path | None = None) -> Path:
    """The directory for journals and leases, created private (0700)."""
    if override is not None:
        chosen = Path(override)
    elif os.environ.get(STATE_DIR_ENV):
        chosen = Path(os.environ[STATE_DIR_ENV])
    else:
        chosen = Path(platformdirs.user_state_dir("relconsole"))
    return ensure_private_dir(chosen.expanduser())


def current_actor() -> Actor:
    """Who is at the keyboard, for the journal and the lease: user, host, SSH origin.

    On a bastion many people share one host, so the SSH client address is what tells
    two sessions of the same shared account apart.
    """
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers); getuser raises KeyError or OSError
        user = os.environ.get("USER") or "unknown"
    ssh_client = None
    for var in ("SSH_CLIENT", "SSH_CONNECTION"):
        fields = os.environ.get(var, "").split()
        if fields:
            ssh_client = fields[0]
            break
    return Actor(user=user or "unknown", host=socket.gethostname(), ssh_client=ssh_client)


def safe_name(release_id: str) -> str:
    """Refuse a release id that would escape its directory when used as a file name."""
    if not release_id or release_id in (".", "..") or "/" in release_id or "\0" in release_id:
        raise ValueError(f"not usable as a file name: {release_id!r}")
    return release_id
