"""A bounded, thread-safe memo for the compiler's caches, shared by the server's threads.

Least recently used entries leave first (a full cache no longer empties at once), and callers
that ask for the same missing key at the same time wait for one computation instead of each
running it: every thread gets the same object for a key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    def __init__(self, limit: int):
        self.limit = limit
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._computing: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value for `key`, made by `make()` if absent. A failure is not remembered: it
        propagates to the caller that ran `make`, and a caller that waited runs it again."""
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                done = self._computing.get(key)
                if done is None:
                    done = self._computing[key] = threading.Event()
                    break  # this caller makes it, outside the lock
            done.wait()
        try:
            value = make()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.limit:
                    self._items.popitem(last=False)
        finally:
            with self._lock:
                del self._computing[key]
            done.set()
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
