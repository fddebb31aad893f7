"""Automation over the journal: events delivered to subscribers (this package's first part).

The journal is the event log: an event is a journal entry (``seq``, ``ts``, ``actor``, ``action``,
``entity_type``, ``entity_id``, ``payload``). Subscribers have a durable cursor in the store and
receive events at least once (``consumer.py``, in-process; ``redis_streams.py`` for servers);
webhooks are subscribers delivered over HTTP with an HMAC signature (``webhooks.py``). See
docs/events.md.
"""

from shipyard.automation.entities import DeadLetter, Event, EventBatch, Subscriber

__all__ = ["DeadLetter", "Event", "EventBatch", "Subscriber"]
