"""Splitting a domain list across machines: ``--shard K/N`` and ``--domains-file``.

A domain's shard is a stable hash of its normalised name (SHA-256, not Python's salted
``hash``), so every worker of a Kubernetes Indexed Job, a Slurm array or GNU parallel agrees on
the split without talking to the others, run after run. Shards are 0-based: K in [0, N).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        k, sep, n = text.partition("/")
        if not (sep and k.strip().isdigit() and n.strip().isdigit()):
            raise ValueError(f"--shard must be K/N, e.g. 0/8 (got {text!r})")
        index, count = int(k), int(n)
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"--shard {text}: need 0 <= K < N (shards are numbered from 0)")
        return cls(index, count)

    def owns(self, domain: str) -> bool:
        digest = hashlib.sha256(domain.encode("ascii", "replace")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, domains: Iterable[str]) -> list[str]:
        return [d for d in domains if self.owns(d)]


def read_domains(lines: TextIO) -> Iterator[str]:
    """One domain per line; blank lines and '#' comments are ignored."""
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if line:
            yield line


def numbered_domains(lines: TextIO) -> Iterator[tuple[int, str]]:
    """Like :func:`read_domains`, with each domain's line number (for ``file:line`` errors)."""
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            yield number, line
