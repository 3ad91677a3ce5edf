"""`announced`: the deployment plan sent before anything moves (`relconsole plan --announce`).

No engine and no lease: announcing changes nothing. The notice is sent to every target
that wants it, flushed, and whatever could not be delivered is returned in words.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from relconsole.model import ReleasePlan
from relconsole.notify import events as ev
from relconsole.notify.delivery import FLUSH_TIMEOUT, Notifier
from relconsole.notify.senders import Notice, Target
from relconsole.placeholders import release_dashboard


def plan_notice(plan: ReleasePlan, plan_text: str, *, who: str, at: float | None = None) -> Notice:
    return Notice(
        event=ev.ANNOUNCED,
        at=time.time() if at is None else at,
        release=plan.release_id,
        service=plan.service,
        version=plan.version,
        environment=plan.environment,
        phase="pending",
        step=0,
        steps=len(plan.steps),
        step_label=f"step 0/{len(plan.steps)}",
        weight=0,
        who=who,
        why="deployment plan",
        message=f"{plan.service} {plan.version} to {plan.environment}: deployment plan",
        dashboard=release_dashboard(plan),
        detail={"plan": plan_text},
        id=str(uuid.uuid4()),
    )


def announce(
    settings: Sequence[Mapping[str, Any]],
    plan: ReleasePlan,
    plan_text: str,
    *,
    who: str,
    timeout: float = FLUSH_TIMEOUT,
) -> list[str]:
    """Send the plan as `announced` to the config's notify: targets (`LoadedConfig.notify`).

    Waits at most `timeout` seconds; returns what was not delivered (empty: all was).
    """
    targets = [Target.from_settings(s) for s in settings]
    wanted = [t for t in targets if t.wants(ev.ANNOUNCED)]
    if not wanted:
        return []
    notifier = Notifier(wanted)
    notifier.send(plan_notice(plan, plan_text, who=who))
    return notifier.close(timeout)
