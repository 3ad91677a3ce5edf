"""Where relconsole keeps its own state (journals, leases) and who is running it.

The state folder holds the audit trail and the lock that decides who drives a release.
Two engineers on one bastion, under two accounts, must meet one driver without
configuring anything, so by default that folder is shared by the host's users; when no
safe shared folder exists, each user's own private folder is used, and the console says
loudly that others on this host will not see this driver (`state_warning`).

Which folder (`choose_state_dir`), first match wins:

1. `--state-dir` / `state.dir:` in the config, then `RELCONSOLE_STATE_DIR`: exactly that
   folder, as before (tests and scripts rely on it).
2. The host's shared folder, `/var/lib/relconsole` (`RELCONSOLE_SHARED_DIR` names another;
   tests point it at a temporary folder), when it passes `shared_dir_problem`.
3. The user's own state folder (platformdirs, `~/.local/state/relconsole`), private (0700),
   with the warning.

Why a group folder an administrator creates, and not a sticky world-writable one such as
`/var/tmp/relconsole` that the first user creates: what two uids need is that each can
open and flock the other's lock file, read the other's lease info, rename a fresh info or
lock file over the other's (the take-over and every renewal replace them), and append to
the journal the other started. In a sticky folder only a file's owner (or the folder's
owner, i.e. whichever user came first) may rename over it, so the second user could never
take over or renew, and an appendable journal would have to be world-writable — any local
user could then rewrite the audit trail, and anyone could have created the folder first,
or a symlink in its place. A group folder gives exactly the trusted set of people who may
drive these releases all of that, and everyone else nothing:

    groupadd relconsole; usermod -aG relconsole alice; usermod -aG relconsole bob
    install -d -o root -g relconsole -m 2770 /var/lib/relconsole

It is accepted only when it is a real folder (not a symlink), owned by root or by this
user, setgid (files and folders made in it keep its group) with group rwx and no write for
others, inside a parent others cannot write to (or that is sticky), and this user is in its
group. Inside it (and inside any folder with that shape, such as a team folder passed with
`--state-dir`) `ensure_private_dir` makes sub-folders 2770, and files are made with
`file_mode` (0660) and `fix_file_mode` after creation, since a umask of 022 would otherwise
take the group's write away. Others on the host cannot enter the folder at all, so they
can neither read the journal, plant a symlink nor replace a file.

Journals of releases driven before the shared folder existed stay in the private folder;
`--state-dir` reads them there.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from relconsole.model import Actor

STATE_DIR_ENV = "RELCONSOLE_STATE_DIR"
SHARED_DIR_ENV = "RELCONSOLE_SHARED_DIR"
SYSTEM_STATE_DIR = Path("/var/lib/relconsole")
SHARED_DIR_MODE = 0o2770  # setgid: what is made inside keeps the folder's group
SHARED_FILE_MODE = 0o660
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class StateChoice:
    """The state folder chosen, whether the host's users share it, and what to tell the
    user when they do not (`warning`, None when there is nothing to say)."""

    path: Path
    shared: bool
    warning: str | None = None


def _shared_shape(st: os.stat_result) -> bool:
    """A folder set up for a group: setgid, group rwx, others cannot write."""
    mode = st.st_mode
    return (
        stat.S_ISDIR(mode)
        and bool(mode & stat.S_ISGID)
        and mode & 0o070 == 0o070
        and not mode & 0o002
    )


def is_shared_dir(path: Path) -> bool:
    """Whether `path` is a folder (not a symlink) shaped for a group (see the docstring)."""
    try:
        return _shared_shape(os.lstat(path))
    except OSError:
        return False


def _in_group(gid: int) -> bool:
    return os.geteuid() == 0 or gid == os.getegid() or gid in os.getgroups()


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (KeyError, ImportError):
        return str(gid)


def shared_dir_problem(path: Path) -> str | None:
    """Why `path` cannot be the host's shared state folder, or None when it can."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link (someone could point it anywhere)"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if st.st_uid not in (0, os.geteuid()):
        return f"is owned by uid {st.st_uid}, not by root"
    if not _shared_shape(st):
        return (f"has mode {stat.S_IMODE(st.st_mode):04o}; it needs 2770 (setgid, "
                "group-writable, nothing for others)")
    try:
        parent = os.stat(path.parent)
    except OSError as exc:
        return f"has a parent that cannot be read ({exc.strerror or exc})"
    if parent.st_mode & 0o002 and not parent.st_mode & stat.S_ISVTX:
        return f"is inside {path.parent}, which anyone can write to (the folder could be swapped)"
    if not _in_group(st.st_gid):
        return f"belongs to group {_group_name(st.st_gid)}, which you are not in"
    return None


def system_state_dir() -> Path:
    """Where the host's shared state folder is expected."""
    configured = os.environ.get(SHARED_DIR_ENV)
    return Path(configured).expanduser() if configured else SYSTEM_STATE_DIR


def private_state_dir() -> Path:
    return Path(platformdirs.user_state_dir("relconsole")).expanduser()


def choose_state_dir(override: Path | None = None, *, system: Path | None = None) -> StateChoice:
    """Which folder holds leases and journals (see the module docstring); creates nothing."""
    if override is not None:
        chosen = Path(override).expanduser()
        return StateChoice(chosen, is_shared_dir(chosen))
    if os.environ.get(STATE_DIR_ENV):
        chosen = Path(os.environ[STATE_DIR_ENV]).expanduser()
        return StateChoice(chosen, is_shared_dir(chosen))
    shared = system if system is not None else system_state_dir()
    problem = shared_dir_problem(shared)
    if problem is None:
        return StateChoice(shared, True)
    private = private_state_dir()
    return StateChoice(private, False, _fallback_warning(shared, problem, private))


def _fallback_warning(shared: Path, problem: str, private: Path) -> str:
    return (
        f"the state folder shared by this host's users, {shared}, {problem}; the lease "
        f"and journal are kept in your own {private} instead, so others on this host "
        "will not see that you drive this release (two consoles could both drive it). "
        f"An administrator sets it up once: groupadd relconsole; usermod -aG relconsole "
        f"USER (for each engineer); install -d -o root -g relconsole -m 2770 {shared}. "
        f"Setting {STATE_DIR_ENV} chooses a folder and silences this."
    )


def state_warning(override: Path | None = None) -> str | None:
    """What the console must show when others on this host will not see its driver.

    None when the folder is shared, or chosen explicitly (--state-dir, the config's
    `state.dir`, RELCONSOLE_STATE_DIR): whoever chose it knows who else uses it.
    """
    return choose_state_dir(override).warning


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and its parents) so that only the people meant to can enter it.

    Normally that is the owner alone (0700). Only the last component is tightened:
    parents such as ~/.local/state belong to the user's wider setup. A directory we do not
    own, or a shared sticky directory like /tmp, is left alone — chmod-ing it would break
    other users, not protect us.

    A folder shaped for a group (`is_shared_dir`: the host's shared state folder) is left
    as it is, and a folder made inside one is made the same shape (2770), so that the
    group's other members can use what this user created there.
    """
    path = Path(path)
    if is_shared_dir(path):
        return path
    parent = _nearest_existing(path.parent)
    if parent is not None and os.path.islink(parent) and is_shared_dir(parent.parent):
        # Only a member of the group can have put it there; it is followed by nobody.
        raise NotADirectoryError(f"{parent} is a symlink inside the shared state folder")
    if parent is not None and is_shared_dir(parent):
        return _ensure_shared_dir(path)
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    st = path.stat()
    looser = stat.S_IMODE(st.st_mode) & 0o077
    shared = st.st_mode & stat.S_ISVTX
    if looser and not shared and st.st_uid == os.geteuid():
        path.chmod(PRIVATE_DIR_MODE)
    return path


def _nearest_existing(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return None


def _ensure_shared_dir(path: Path) -> Path:
    missing = []
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    for folder in [*reversed(missing), *([] if missing else [path])]:
        with contextlib.suppress(FileExistsError):  # another member made it just now
            folder.mkdir(mode=SHARED_DIR_MODE)
        try:
            # O_NOFOLLOW: a symlink a member planted in its place is refused, not followed.
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise NotADirectoryError(
                f"{folder} is not a folder (a symlink or a file is in its place)") from exc
        try:
            st = os.fstat(fd)
            if not _shared_shape(st) and st.st_uid == os.geteuid():
                # The umask took the group's bits away (or an older relconsole made it 0700).
                os.fchmod(fd, SHARED_DIR_MODE)
        finally:
            os.close(fd)
    return path


def file_mode(path: Path) -> int:
    """The mode for a new state file at `path`: 0660 in a group's folder (its members
    open the lock, read the lease and append to the journal), 0600 anywhere else."""
    return SHARED_FILE_MODE if is_shared_dir(Path(path).parent) else PRIVATE_FILE_MODE


def fix_file_mode(fd: int, path: Path) -> None:
    """Give a file this user owns the mode `file_mode` wants (os.open's mode is cut by
    the umask, which would take the group's write away in a shared folder)."""
    st = os.fstat(fd)
    wanted = file_mode(path)
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != wanted:
        os.fchmod(fd, wanted)


def state_dir(override: Path | None = None) -> Path:
    """The directory for journals and leases (see `choose_state_dir`), created.

    A private folder is created 0700; the host's shared folder is used as it is.
    """
    return ensure_private_dir(choose_state_dir(override).path)


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
