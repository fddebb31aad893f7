"""API operations of events: subscribers and their cursors, webhooks, dead letters (see docs/events.md)."""

from __future__ import annotations

from shipyard.api.operation import Operation

EVENT_OPERATIONS: tuple[Operation, ...] = (
    Operation("read_events", "events", "GET", "/events", "Events (journal entries) after a seq, filtered"),
    Operation("create_subscriber", "events", "POST", "/event-subscribers", "Register a subscriber", permission="admin"),
    Operation("list_subscribers", "events", "GET", "/event-subscribers", "Subscribers and cursors", permission="admin"),
    Operation("get_subscriber", "events", "GET", "/event-subscribers/{name}", "Get a subscriber", permission="admin"),
    Operation(
        "delete_subscriber", "events", "DELETE", "/event-subscribers/{name}", "Delete a subscriber", permission="admin"
    ),
    Operation("poll_events", "events", "GET", "/event-subscribers/{name}/events", "A subscriber's next events"),
    Operation(
        "ack_events", "events", "POST", "/event-subscribers/{name}/ack", "Move a cursor forward", permission="admin"
    ),
    Operation(
        "mark_processed",
        "events",
        "POST",
        "/event-subscribers/{name}/processed",
        "Record a processed seq (True the first time)",
        permission="admin",
    ),
    Operation("create_webhook", "events", "POST", "/webhooks", "Register a signed webhook", permission="admin"),
    Operation("list_webhooks", "events", "GET", "/webhooks", "List webhooks", permission="admin"),
    Operation("delete_webhook", "events", "DELETE", "/webhooks/{name}", "Delete a webhook", permission="admin"),
    Operation(
        "deliver_webhooks", "events", "POST", "/webhooks-deliver", "Deliver pending events once", permission="admin"
    ),
    Operation("list_dead_letters", "events", "GET", "/dead-letters", "Events webhooks failed to deliver"),
    Operation(
        "replay_dead_letters", "events", "POST", "/dead-letters/replay", "Re-send dead letters", permission="admin"
    ),
)
