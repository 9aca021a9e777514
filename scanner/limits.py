"""The limits of a scan: open connections, handshakes at work, connections per address.

Theory of this module
---------------------
* Waiting is cheap, CPU is not. A census spends most of its endpoints' time waiting: for a
  TCP connect, for a silent or tar-pitting peer's first byte, for round trips. If one slot
  covered an endpoint from connect to close, a silent peer would hold its slot for the whole
  timeout and 200 of them would cost ``timeout x 200 / slots``. So three separate limits:

  - **connections** (``--connections``): sockets open at once, from connect to close. Their
    cost is a file descriptor and a little memory, so this limit is large, and bounded by
    ``RLIMIT_NOFILE``: the soft limit is raised to the hard one at start
    (:func:`raise_nofile_limit`), the budget keeps a reserve for DNS sockets and files, and
    when the descriptors are what holds the run back, one notice says so.
  - **work** (``--concurrency``): endpoints *at work* at once, i.e. between two waits on the
    peer: building a ClientHello, TLS crypto, parsing an XMPP reply. An endpoint takes a work
    token when its connection is up and whenever the peer's bytes arrive, and gives it back
    whenever it waits on the peer again (:class:`Paced`). A silent peer holds no token.
  - **per address** (``--per-address``): at most N connections open at once to one IP
    address. One Access Edge often serves hundreds of hosted domains, and a burst of
    connections trips its rate limits and turns into false ``connect-refused``. Taken before a
    connection slot, so a crowded address never holds slots that other addresses could use.

* Deadlines measure the peer, not our queue. An endpoint's deadline starts when it has its
  address and connection slots, and the time it then queues for a work token is added to it
  (:class:`Paced` moves the cancel scope's deadline). However many endpoints are in flight,
  a healthy one never times out because others were being worked on.
* Cheap on the fast path: tokens are taken with ``acquire_nowait`` (no scheduling point) and
  only a contended limiter costs an ``await``; per-address limiters exist only while an
  address has connections, so memory stays flat over a census.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

DEFAULT_CONNECTIONS = 4096
DEFAULT_WORK = 64
DEFAULT_PER_ADDRESS = 4
DEFAULT_DNS = 128
FD_RESERVE = 64  # stdio, the trust store, output files, the resolver's TCP fallback, trio


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; returns the (soft, hard) in force.

    Never fails: a platform or container that refuses leaves the limit as it was.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):  # refused: keep the limit in force
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


@dataclass(frozen=True)
class Budget:
    """How many sockets a scan may open, from what was asked and the descriptor limit."""

    connections: int
    dns: int
    nofile: int  # the soft RLIMIT_NOFILE the budget was computed from
    fd_bound: bool  # the descriptor limit, not --connections, sets ``connections``

    @classmethod
    def plan(cls, connections: int, dns: int, nofile: int) -> Budget:
        """Fit ``connections`` + ``dns`` sockets (plus a reserve) into ``nofile`` descriptors.

        DNS keeps at most a quarter of what is left after the reserve, connections the rest;
        each gets at least one, so even a tiny limit scans (slowly), never fails.
        """
        free = max(nofile - FD_RESERVE, 2)
        dns = max(1, min(dns, free // 4))
        allowed = max(1, free - dns)
        return cls(min(connections, allowed), dns, nofile, connections > allowed)

    def notice(self) -> str:
        return (f"at most {self.connections} connections at once: the open-file limit is "
                f"{self.nofile} (raise it with `ulimit -n` to let more slow peers wait together)")


@dataclass
class Limits:
    """The limiters one run shares (every scan of a ``fedscan monitor`` run, too)."""

    budget: Budget
    work: trio.CapacityLimiter
    per_address: int  # 0: no cap
    notify: Callable[[str], None] | None = None
    connections: trio.CapacityLimiter = field(init=False)
    _addresses: dict[str, trio.CapacityLimiter] = field(default_factory=dict)
    _noticed: bool = False
    peak_connections: int = 0

    def __post_init__(self) -> None:
        self.connections = trio.CapacityLimiter(self.budget.connections)

    @classmethod
    def create(cls, *, connections: int, work: int, per_address: int, dns: int,
               nofile: int | None = None, notify: Callable[[str], None] | None = None) -> Limits:
        """``nofile``: the descriptor limit to plan with (default: the process's soft limit)."""
        if nofile is None:
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        budget = Budget.plan(connections, dns, nofile)
        return cls(budget, trio.CapacityLimiter(work), per_address, notify)

    async def open(self, address: str) -> None:
        """Wait for a slot at ``address`` (politeness), then for a connection slot."""
        if self.per_address > 0:
            limiter = self._addresses.get(address)
            if limiter is None:
                limiter = self._addresses[address] = trio.CapacityLimiter(self.per_address)
            try:
                limiter.acquire_nowait()
            except trio.WouldBlock:
                await limiter.acquire()
        try:
            self.connections.acquire_nowait()
        except trio.WouldBlock:
            if self.budget.fd_bound and not self._noticed and self.notify is not None:
                self._noticed = True
                self.notify(self.budget.notice())
            try:
                await self.connections.acquire()
            except BaseException:
                self._release_address(address)
                raise
        self.peak_connections = max(self.peak_connections, self.connections.borrowed_tokens)

    def close(self, address: str) -> None:
        """Give back what :meth:`open` took (in the same task)."""
        self.connections.release()
        self._release_address(address)

    def _release_address(self, address: str) -> None:
        limiter = self._addresses.get(address)
        if limiter is None:
            return
        limiter.release()
        if limiter.borrowed_tokens == 0 and limiter.statistics().tasks_waiting == 0:
            del self._addresses[address]


class Paced(trio.abc.Stream):
    """One endpoint's transport under the work limiter: holds a work token except while it
    waits for the peer's bytes; the time spent queueing for a token goes to ``on_queued``
    (which moves the endpoint's deadline: our queue is not the peer's slowness)."""

    def __init__(self, inner: trio.abc.Stream, work: trio.CapacityLimiter,
                 on_queued: Callable[[float], None]) -> None:
        self.inner = inner
        self.work = work
        self.on_queued = on_queued
        self.held = False

    async def take(self) -> None:
        if self.held:
            return
        try:
            self.work.acquire_nowait()
        except trio.WouldBlock:
            start = trio.current_time()
            await self.work.acquire()
            self.on_queued(trio.current_time() - start)
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self.work.release()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        self.give()
        data = await self.inner.receive_some(max_bytes)
        await self.take()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        # kept with the token: our writes are small and a socket buffer takes them at once
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self.give()
        await self.inner.aclose()
