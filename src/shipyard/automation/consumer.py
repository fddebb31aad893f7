"""The in-process transport: a subscriber's handler fed from the journal by sequence number.

``Consumer`` polls its subscriber's next events (``poll_events``), calls the handler with each one,
and acknowledges it (``ack_events``) only after the handler returned. A handler that raises stops
the round without acknowledging, so the event comes again on the next round; a process killed
between the handler and the ack delivers that event again after a restart. Delivery is therefore
**at least once**: handlers must be idempotent by ``event.seq`` (``EventService.mark_processed``
records processed seqs for handlers that cannot otherwise be).

The source is anything with ``poll_events(name, limit)`` and ``ack_events(name, seq)``: the
``EventService`` in-process, or a :class:`shipyard.Client` (embedded or remote).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from shipyard.automation.entities import Event, EventBatch

log = logging.getLogger("shipyard.events")
Handler = Callable[[Event], Any]


class EventSource(Protocol):
    def poll_events(self, name: str, limit: int = 100) -> EventBatch: ...

    def ack_events(self, name: str, seq: int) -> Any: ...


class Consumer:
    def __init__(self, source: EventSource, name: str, handler: Handler, *, batch: int = 100, interval: float = 0.2):
        self.source = source
        self.name = name
        self.handler = handler
        self.batch = batch
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Handle the events available now (one batch); returns how many were handled.

        Raises what the handler raised, after acknowledging the events handled before it."""
        page = self.source.poll_events(self.name, limit=self.batch)
        for event in page.events:
            self.handler(event)
            self.source.ack_events(self.name, event.seq)
        if page.scanned_to > (page.events[-1].seq if page.events else 0):
            self.source.ack_events(self.name, page.scanned_to)  # skip what the filter left out
        return len(page.events)

    def run_forever(self) -> None:
        """Poll until ``stop()``: immediately again after a full batch, else after ``interval`` or ``notify()``."""
        while not self._stop.is_set():
            try:
                handled = self.run_once()
            except Exception as exc:  # the failed event was not acknowledged: it comes again
                log.warning("subscriber %s: handler failed, retrying: %s", self.name, exc)
                handled = 0
            if handled < self.batch:
                self._wake.wait(self.interval)
                self._wake.clear()

    def notify(self) -> None:
        """Poll now (e.g. after this process wrote to the store) instead of at the end of the interval."""
        self._wake.set()

    def start(self) -> Consumer:
        self._thread = threading.Thread(target=self.run_forever, name=f"shipyard-events-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
