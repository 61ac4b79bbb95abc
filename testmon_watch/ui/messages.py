"""Textual messages that carry session events into the app, coalesced so floods stay cheap.

The session calls `EventPump.listener` from its threads. Events queue up in
order; the first one of a batch posts `EventsPending` to the app, and the app
drains the queue at most every `INTERVAL` seconds and applies everything in one
go: a run of thousands of tests costs a few redraws, not one per test.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual.message import Message
from textual.message_pump import MessagePump

INTERVAL = 0.05  # seconds between two applications of queued events


@dataclass
class EventsPending(Message):
    """Session events are waiting in the pump: drain it."""


@dataclass
class SessionEvents(Message):
    """A batch of session events, in the order the session emitted them."""

    events: list[object]


class EventPump:
    """Thread-safe queue between the session's threads and the app's message loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[object] = []
        self._scheduled = False
        self.target: MessagePump | None = None

    def attach(self, target: MessagePump) -> None:
        with self._lock:
            self.target = target
            waiting = bool(self._pending) and not self._scheduled
            if waiting:
                self._scheduled = True
        if waiting:
            target.post_message(EventsPending())

    def listener(self, event: object) -> None:
        """The session's listener: called from any thread."""
        with self._lock:
            self._pending.append(event)
            if self._scheduled or self.target is None:
                return
            self._scheduled = True
            target = self.target
        target.post_message(EventsPending())  # thread-safe in Textual

    def drain(self) -> SessionEvents:
        with self._lock:
            events, self._pending = self._pending, []
            self._scheduled = False
        return SessionEvents(events)
