"""Keep the developer's own state, config and keyring out of every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fixed zone so times on screen and in snapshots do not depend on the machine.
os.environ["TZ"] = "UTC"
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("RELCONSOLE_STATE_DIR", str(state))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    return state


def pytest_configure(config: pytest.Config) -> None:
    import time

    time.tzset()


# The session fixture each expensive service comes from, and its xdist group. Under
# `-n N --dist loadgroup` a group runs on one worker, so the service starts once per run
# (and not once per worker, on a machine with two cores to share between them).
SERVICE_GROUPS = {"sandbox": "sandbox", "strategy_sandbox": "strategy-sandbox",
                  "unleash": "unleash"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        needs = getattr(item, "fixturenames", ())
        for fixture, group in SERVICE_GROUPS.items():
            if fixture in needs:
                item.add_marker(pytest.mark.xdist_group(group))
