"""Fan-out of snapshots and events to the front ends that subscribed."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from relconsole.clock import Clock
from relconsole.engine.state import Event, EventKind, Snapshot

SnapshotListener = Callable[[Snapshot], None]
EventListener = Callable[[Event], None]

# Enough for a late subscriber's first screen; the journal keeps everything.
RECENT_EVENTS = 500


class EventBus:
    """Listeners are plain callbacks run on the engine's loop, in subscription order."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._events: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._snapshot_listeners: list[SnapshotListener] = []
        self._event_listeners: list[EventListener] = []

    def subscribe(
        self, on_snapshot: SnapshotListener | None = None, on_event: EventListener | None = None
    ) -> Callable[[], None]:
        if on_snapshot:
            self._snapshot_listeners.append(on_snapshot)
        if on_event:
            self._event_listeners.append(on_event)

        def unsubscribe() -> None:
            if on_snapshot in self._snapshot_listeners:
                self._snapshot_listeners.remove(on_snapshot)
            if on_event in self._event_listeners:
                self._event_listeners.remove(on_event)

        return unsubscribe

    def recent(self, n: int = 50) -> list[Event]:
        return list(self._events)[-n:]

    def emit(
        self, kind: EventKind, message: str, actor: str = "", at: float | None = None,
        past: bool = False, **data: Any,
    ) -> None:
        event = Event(at=self.clock.now() if at is None else at, kind=kind, message=message,
                      data=data, actor=actor, past=past)
        self._events.append(event)
        for listener in list(self._event_listeners):
            listener(event)

    def publish(self, snapshot: Callable[[], Snapshot]) -> None:
        """Send a fresh snapshot; it is built only when someone listens."""
        if not self._snapshot_listeners:
            return
        snap = snapshot()
        for listener in list(self._snapshot_listeners):
            listener(snap)
