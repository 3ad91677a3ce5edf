"""The names of the events a notification is sent for, shared by the config and senders.

Nothing is imported here, so the config loader can check `notify[].events` against the
same names the senders use without loading HTTP clients or the engine.
"""

from __future__ import annotations

ANNOUNCED = "announced"  # `relconsole plan --announce`, before anything moves
STARTED = "started"  # a console starts driving the release
STEP = "step"  # a verified step to a new canary weight
PAUSED = "paused"
ROLLED_BACK = "rolled_back"  # verified at 0 %
ROLLBACK_FAILED = "rollback_failed"  # a rollback attempt not verified (retried until it is)
PROMOTED = "promoted"  # verified at 100 %
MIGRATION = "migration"  # a database migration ran (up, or an operator's down)

EVENTS: tuple[str, ...] = (
    ANNOUNCED, STARTED, STEP, PAUSED, ROLLED_BACK, ROLLBACK_FAILED, PROMOTED, MIGRATION,
)
