"""Consumption-key revocations in this process, for the caches that must forget a key at once.

The gateway caches authenticated keys for a few seconds (a database lookup per inference call
would dominate its overhead); a key revoked through this server's API must stop working on
the next call, not when the cache entry ages out. `api.key_ops` reports each revocation here;
the gateway listens. (A revocation made by another process reaches it when the entry expires.)
"""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[str], None]


class KeyRevocations:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def revoked(self, key_id: str) -> None:
        """Tell every listener that the consumption key `key_id` no longer works."""
        for listener in list(self._listeners):
            listener(key_id)


#: The one feed of this process (a revocation is a process-wide fact, like the database).
consumption_key_revocations = KeyRevocations()
