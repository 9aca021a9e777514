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
    peer: TLS crypto, certificate and XMPP parsing. An endpoint takes a work token whenever
    the peer's bytes arrive and gives it back whenever it waits on the peer again
    (:class:`Paced`). Its first words (a ClientHello, an XMPP stream header: microseconds) go
    out without one, so a silent peer starts its wait the moment it is connected and holds
    no token at all: silent peers cost one timeout from their connect, not from their turn.
  - **active**: endpoints in conversation with their peer, at most ``ACTIVE_PER_WORK`` x
    ``--concurrency`` at once, taken before the connect. An endpoint whose peer has not
    answered (connect, then the first reply) within a grace period is demoted: it waits on
    holding only its connection, and its active slot admits the next endpoint. The grace is a
    few times the typical first-answer latency (at least ``ACTIVE_GRACE``, at most half the
    timeout), so silent and filtered peers leave the way within about a second, while when
    every peer is slow nobody is demoted and the pool keeps holding back new connections: a
    lab (or a hosting Edge) that answers every endpoint from one core is not buried under
    4,096 ClientHellos and made to time out its own healthy endpoints.
  - **per address** (``--per-address``): at most N connections open at once to one IP
    address. One Access Edge often serves hundreds of hosted domains, and a burst of
    connections trips its rate limits and turns into false ``connect-refused``. Taken before a
    connection slot, so a crowded address never holds slots that other addresses could use.

* Deadlines measure the peer, not our queue. An endpoint's deadline starts when it has its
  address and connection slots, and the time it then queues for work tokens is added to it
  (:class:`Paced` moves the cancel scope's deadline). However many endpoints are in flight,
  a healthy one never times out because others were being worked on.
* The garbage collector is a limit too. A census allocates millions of short-lived objects
  (DNS messages, TLS records, results) while a hundred thousand long-lived ones (the modules
  of trio, dnspython, cryptography and ours) sit in the oldest generation. Two things keep
  the collector out of the way. Each endpoint's connection is freed by reference counting
  the moment it ends (:meth:`Limits.close` drops the pace's callback, and
  :func:`scanner.tls_compat.release` breaks the cycle trio's ``SSLStream`` keeps with
  itself). Left to the collector, a scan of 10,000 endpoints peaked at 156 MB of RSS with
  the default thresholds and at 299 MB with the ones below; freed on time, 106 MB. And
  :func:`census_gc` freezes what exists when the scan starts (``gc.freeze``: never traversed
  again) and lets the youngest generation grow to ``GC_YOUNG`` objects between collections.
  At 1,000 endpoints the collector went from ~300 collections and ~0.17 s of CPU (8 % of
  the run) to ~11 and ~0.015 s.
* Cheap on the fast path: tokens are taken with ``acquire_nowait`` (no scheduling point) and
  only a contended limiter costs an ``await``; per-address limiters exist only while an
  address has connections, so memory stays flat over a census.
"""

from __future__ import annotations

import contextlib
import gc
import resource
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import trio

DEFAULT_CONNECTIONS = 4096
DEFAULT_WORK = 64
DEFAULT_PER_ADDRESS = 4
DEFAULT_DNS = 128
ACTIVE_PER_WORK = 2  # endpoints in conversation per work token
GRACE_SAMPLES = 16  # first answers seen before the grace follows their latency
ACTIVE_GRACE = 0.5  # least seconds to wait for a first answer before an endpoint is demoted
GRACE_PER_LATENCY = 4  # ... else this many times the typical first-answer latency
FD_RESERVE = 64  # stdio, the trust store, output files, the resolver's TCP fallback, trio
GC_YOUNG = 10_000  # allocations between young-generation collections during a scan (default 700)
T = TypeVar("T")


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


@contextlib.contextmanager
def census_gc() -> Iterator[None]:
    """The collector tuned for a scan (see the theory above), as it was again afterwards:
    a library caller or a ``fedscan monitor`` loop keeps its own settings between scans.
    ``gc.unfreeze`` thaws every frozen object, so a caller that froze its own (a server
    that forks workers does) keeps them frozen: the objects we froze stay so with them."""
    thresholds = gc.get_threshold()
    caller_froze = gc.get_freeze_count() > 0
    gc.freeze()
    gc.set_threshold(max(GC_YOUNG, thresholds[0]), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not caller_froze:
            gc.unfreeze()


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
    timeout: float
    notify: Callable[[str], None] | None = None
    connections: trio.CapacityLimiter = field(init=False)
    active: trio.Semaphore = field(init=False)
    _addresses: dict[str, trio.CapacityLimiter] = field(default_factory=dict)
    _noticed: bool = False
    peak_connections: int = 0
    latency: float = 0.0  # moving average of first-answer latencies (active endpoints)
    samples: int = 0

    @property
    def grace(self) -> float:
        """How long an active endpoint may wait for its peer's first answer (connect included)
        before it is demoted: a few times what answers typically take, so that when every
        peer is slow (one overloaded server, a congested link) nobody is demoted and the
        active pool keeps holding back new connections; at most half the timeout (which is
        also the grace until a few answers have been seen: no burst of demotions at start)."""
        if self.samples < GRACE_SAMPLES:
            return self.timeout / 2
        return min(self.timeout / 2, max(ACTIVE_GRACE, GRACE_PER_LATENCY * self.latency))

    def answered_after(self, seconds: float) -> None:
        self.samples += 1
        self.latency = seconds if self.samples == 1 else 0.9 * self.latency + 0.1 * seconds

    def __post_init__(self) -> None:
        self.connections = trio.CapacityLimiter(self.budget.connections)
        self.active = trio.Semaphore(int(self.work.total_tokens) * ACTIVE_PER_WORK)

    @classmethod
    def create(cls, *, connections: int, work: int, per_address: int, dns: int, timeout: float,
               nofile: int | None = None, notify: Callable[[str], None] | None = None) -> Limits:
        """``nofile``: the descriptor limit to plan with (default: the process's soft limit)."""
        if nofile is None:
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        budget = Budget.plan(connections, dns, nofile)
        return cls(budget, trio.CapacityLimiter(work), per_address, timeout, notify)

    async def open(self, address: str) -> Pace:
        """Wait for a slot at ``address`` (politeness), an active slot, then a connection slot."""
        if self.per_address > 0:
            limiter = self._addresses.get(address)
            if limiter is None:
                limiter = self._addresses[address] = trio.CapacityLimiter(self.per_address)
            try:
                limiter.acquire_nowait()
            except trio.WouldBlock:
                await limiter.acquire()
        pace = Pace(self, address)
        try:
            await self.active.acquire()
            pace.active = True
            try:
                self.connections.acquire_nowait()
            except trio.WouldBlock:
                if self.budget.fd_bound and not self._noticed and self.notify is not None:
                    self._noticed = True
                    self.notify(self.budget.notice())
                await self.connections.acquire()
        except BaseException:
            pace.demote()
            self._release_address(address)
            raise
        self.peak_connections = max(self.peak_connections, self.connections.borrowed_tokens)
        return pace

    def close(self, pace: Pace) -> None:
        """Give back what :meth:`open` took (in the same task), and drop the endpoint's
        callback: the pace and the handshake refer to each other, and without this the pair
        (and the connection it holds) waits for the garbage collector instead of going
        when the endpoint is done."""
        pace.on_queued = None
        pace.give()
        pace.demote()
        self.connections.release()
        self._release_address(pace.address)

    def _release_address(self, address: str) -> None:
        limiter = self._addresses.get(address)
        if limiter is None:
            return
        limiter.release()
        if limiter.borrowed_tokens == 0 and limiter.statistics().tasks_waiting == 0:
            del self._addresses[address]


class Pace:
    """One endpoint's standing: whether it is active, whether it holds a work token, and
    where the time it queues for one goes (``on_queued``: its deadline)."""

    def __init__(self, limits: Limits, address: str) -> None:
        self.limits = limits
        self.address = address
        self.active = False
        self.answered = False  # the peer has said something
        self.token = False
        self.on_queued: Callable[[float], None] | None = None

    async def take(self) -> None:
        """A work token; time spent queueing for it goes to ``on_queued``."""
        if self.token:
            return
        work = self.limits.work
        try:
            work.acquire_nowait()
        except trio.WouldBlock:
            start = trio.current_time()
            await work.acquire()
            if self.on_queued is not None:
                self.on_queued(trio.current_time() - start)
        self.token = True

    def give(self) -> None:
        if self.token:
            self.token = False
            self.limits.work.release()

    def demote(self) -> None:
        """No longer active (its peer is slow or silent, or it is done)."""
        if self.active:
            self.active = False
            self.limits.active.release()

    async def wait(self, peer: Callable[[], Awaitable[T]], *, then_work: bool = True,
                   answer: bool = True) -> T:
        """Wait for the peer (``peer`` must be safe to cancel and call again: a socket read, a
        wait for writability), without a work token. Until the peer's first answer an active
        endpoint that waits longer than the grace period is demoted (its active slot goes to
        the next endpoint) and waits on; once the peer has answered it stays active to the
        end, so the active pool bounds the conversations in progress. ``answer``: this wait
        is for the peer's words (not a connect). Takes a work token after if ``then_work``."""
        self.give()
        if self.active and not self.answered:
            limits = self.limits
            start = trio.current_time()
            with trio.move_on_after(limits.grace) as scope:
                result = await peer()
            if scope.cancelled_caught:
                self.demote()
                result = await peer()
            elif answer:
                limits.answered_after(trio.current_time() - start)
        else:
            result = await peer()
        self.answered = self.answered or answer
        if then_work:
            await self.take()
        return result


class Paced(trio.abc.Stream):
    """One endpoint's transport under its :class:`Pace`: every read is a wait on the peer."""

    def __init__(self, inner: trio.abc.Stream, pace: Pace) -> None:
        self.inner = inner
        self.pace = pace

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.pace.wait(lambda: self.inner.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        # kept with the token: our writes are small and a socket buffer takes them at once
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self.pace.give()
        await self.inner.aclose()
