"""Failed-authentication rate limiting: a client address that fails too often is refused for a while.

Per server process (each worker keeps its own counts), keyed by the peer address. A sliding
window: more than ``max_failures`` failures within ``window_s`` seconds blocks the address until
the oldest of them leaves the window. Successful requests do not reset the count, so guessing
between valid calls gains nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class FailureLimiter:
    def __init__(self, max_failures: int = 10, window_s: float = 60.0, max_clients: int = 100_000):
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it is not blocked."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(client)
            if not failures:
                return 0.0
            while failures and failures[0] <= now - self.window_s:
                failures.popleft()
            if len(failures) < self.max_failures:
                return 0.0
            return max(0.0, failures[0] + self.window_s - now)

    def fail(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.max_clients:
                self._forget_idle(now)
            failures = self._failures.setdefault(client, deque())
            failures.append(now)
            while len(failures) > self.max_failures:
                failures.popleft()

    def _forget_idle(self, now: float) -> None:
        for client in [c for c, f in self._failures.items() if not f or f[-1] <= now - self.window_s]:
            del self._failures[client]
