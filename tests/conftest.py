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
