"""A bounded least-recently-used table that counts its hits: the one cache shape fedscan uses.

Why not ``functools.lru_cache``: that one lives on a module-level function, so it is shared by
everything in the process (two scans with different trust stores or times would have to put
them in the key, and a test cannot start clean), and it cannot be sized or inspected per owner.
An :class:`Lru` belongs to the object that made it (:class:`scanner.verify.Verifier`), is
bounded so a census never holds every chain it saw, and counts hits and misses so a test or
the bench can show the hit rate instead of asserting it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int


class Lru(Generic[K, V]):
    """At most ``maxsize`` entries; the least recently used one goes first."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("an Lru holds at least one entry")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value for ``key``, made (and kept) on a miss. An exception from ``make`` is
        not cached: the next call tries again."""
        try:
            value = self._entries[key]
        except KeyError:
            self.misses += 1
            value = make()
            self._entries[key] = value
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            return value
        self.hits += 1
        self._entries.move_to_end(key)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, len(self._entries))
