"""Handshakes that capture, never verify: connect, negotiate (XMPP STARTTLS), TLS, record.

Theory of this module
---------------------
* Capture, don't judge. The TLS client (:mod:`scanner.tls_client`) accepts anything, so that
  a broken or legacy server still shows its chain; the verifier judges the chain later. The
  only judgement here is about the *connection*.
* Errors are data. :func:`handshake` returns a :class:`HandshakeResult` for every endpoint,
  whatever happens (only ``trio.Cancelled`` escapes), with a registered finding as
  ``failure``. A scan of many endpoints in one nursery must never lose siblings to one peer.
* One deadline per endpoint. ``timeout`` bounds connect + negotiation + handshake as a whole
  (``trio.move_on_after``), and every read is bounded in size, so a peer that drips a byte a
  second is cut off exactly like a silent one.
* This module only drives. An attempt walks the :class:`Phase` s in order; what the wire
  said is read by the sans-I/O :mod:`scanner.tlswire` (fed by the TLS message callback and by
  :class:`Recorder`, which keeps the first bytes of the TLS phase), which also decides what a
  failure means; the plaintext XMPP phase is the sans-I/O :mod:`scanner.xmpp`'s (driven by
  :mod:`scanner.transport`), which guarantees no byte after ``<proceed/>`` is swallowed
  before TLS begins. The private hooks that make the wire visible are :mod:`scanner.tls_compat`'s.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import trio

from scanner.acceptance_model import Acceptance
from scanner.findings import Finding, finding
from scanner.limits import Pace, Paced
from scanner.results import TlsInfo as TlsInfo
from scanner.srv import SERVICES
from scanner.tls_client import ClientCredentials, client_context
from scanner.tls_compat import MessageDispatch, release, served_chain
from scanner.tlswire import (
    WireLog,
    handshake_failure,
    refusal_after_handshake,
    timeout_failure,
)
from scanner.transport import MAX_READ as MAX_READ
from scanner.transport import (
    Failed,
    Heard,
    Recorder,
    StartTls,
    close,
    connect_failure,
    first_word,
    open_tcp,
)

CLIENT_CERT_PROBE_SECONDS: Final = 0.3  # ceiling of the post-handshake wait for an alert
CLIENT_CERT_PROBE_FLOOR: Final = 0.05  # ... and its floor, whatever the measured round trip
LEGACY_VERSIONS: Final = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})


def verdict_wait(round_trip: float, *, round_trips: int, floor: float, ceiling: float,
                 remaining: float) -> float:
    """How long to wait after a completed TLS 1.3 handshake for the peer's verdict on our
    certificate (an alert, a close, a session ticket): ``round_trips`` of the estimated round
    trip, between ``floor`` and ``ceiling``, never more than half the deadline left. One rule
    for the client-certificate probe and the acceptance probe (scanner.acceptance)."""
    return max(0.0, min(ceiling, max(floor, round_trips * round_trip), remaining / 2))


def probe_budget(connect: float, tls: float, remaining: float) -> float:
    """The client-certificate probe's wait for a TLS 1.3 server's verdict on the certificate we
    did not send.

    The verdict follows our Finished by one round trip plus the server's work. The TCP connect
    measured the round trip alone; the handshake measured a round trip plus the server's work
    and our own loop's delay, so on a loaded scanner or a slow server it is the better guide:
    a fixed 50 ms floor on loopback missed servers that dropped us after 60-80 ms under load.
    So four round trips of the slower estimate: 4 x connect or 2 x handshake."""
    return verdict_wait(max(connect, tls / 2), round_trips=4, floor=CLIENT_CERT_PROBE_FLOOR,
                        ceiling=CLIENT_CERT_PROBE_SECONDS, remaining=remaining)


# --- public data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One endpoint: what to speak (``service``), whom to name (SNI) and where to connect."""

    service: str  # "sip-federation" | "sip-access" | "xmpp-server" | "xmpps-server"
    host: str  # SRV target FQDN (A-label, no trailing dot)
    port: int
    address: str  # IPv4/IPv6 literal, already resolved
    xmpp_domain: str | None = None

    @property
    def sni(self) -> str:
        """SIP peers name the SRV target; XMPP peers name the XMPP domain (RFC 6120 13.7)."""
        if SERVICES[self.service].xmpp and self.xmpp_domain:
            return self.xmpp_domain
        return self.host


@dataclass(frozen=True)
class HandshakeResult:
    chain: tuple[bytes, ...]  # DER, in served order; empty if none was seen
    tls: TlsInfo | None
    failure: Finding | None  # None when the handshake completed on a current TLS version
    timings: Mapping[str, float]  # seconds: "connect", "starttls" (xmpp), "tls", "total"
    xmpp_features: tuple[str, ...] = ()
    starttls_required: bool | None = None  # XMPP STARTTLS only: did the features say <required/>
    acceptance: Acceptance | None = None  # the partner's verdict on our certificate (after_tls)


@dataclass(frozen=True)
class Established:
    """What a post-handshake step (the acceptance probe) gets: the live TLS stream, what the
    wire said so far, and the endpoint's deadline, which it must keep."""

    stream: trio.SSLStream[trio.abc.Stream]
    target: Target
    tls: TlsInfo
    wire: WireLog
    deadline: float  # trio clock
    rtt: float  # the TCP connect time, our round-trip estimate


AfterTls = Callable[[Established], Awaitable[Acceptance]]


# --- one attempt ----------------------------------------------------------------------------------


class Phase(StrEnum):
    """Where an attempt is, in order; a timeout's finding names it (``details.phase``)."""

    CONNECT = "connect"
    STARTTLS = "starttls"  # XMPP only: the plaintext stream up to <proceed/>
    TLS = "tls"
    ESTABLISHED = "established"  # the client-certificate probe and the after_tls step


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one attempt is asked to do; fixed before it starts."""

    target: Target
    ctx: ssl.SSLContext
    dispatch: MessageDispatch
    from_domain: str | None
    presenting: bool  # we have a client certificate to send
    pace: Pace | None  # see scanner.limits: work tokens, active slot, deadline pauses
    after_tls: AfterTls | None


@dataclass(frozen=True, slots=True)
class _Session:
    """The established TLS connection, as recorded."""

    tls: TlsInfo
    chain: tuple[bytes, ...]  # DER, as served


@dataclass(slots=True)
class _Attempt:
    """One endpoint's attempt in progress: its phase, the stream it holds open, its deadline,
    and what each phase produced (frozen), made into a HandshakeResult by :meth:`result`."""

    plan: _Plan
    deadline: float  # trio clock; extended by the time spent queueing for work
    wire: WireLog = field(default_factory=WireLog)
    phase: Phase = Phase.CONNECT
    scope: trio.CancelScope | None = None
    stream: trio.abc.Stream | None = None
    recorder: Recorder | None = None
    starttls: StartTls | None = None  # XMPP: the plaintext phase and the features it saw
    session: _Session | None = None
    failure: Finding | None = None
    acceptance: Acceptance | None = None
    timings: dict[str, float] = field(default_factory=dict)
    _mark: float = 0.0

    def _lap(self, name: str) -> None:
        now = trio.current_time()
        self.timings[name] = now - self._mark
        self._mark = now

    async def run(self) -> None:
        self._mark = trio.current_time()
        try:
            self.stream = self.recorder = await self._connect()
            self._lap("connect")
            if not SERVICES[self.plan.target.service].direct_tls:  # XMPP STARTTLS
                self.phase = Phase.STARTTLS
                target = self.plan.target
                self.starttls = StartTls(target.xmpp_domain or target.host, self.plan.from_domain)
                await self.starttls.run(self.recorder)
                self._lap("starttls")
            self.phase = Phase.TLS
            tls, session = await self._tls(self.recorder)
            self.phase = Phase.ESTABLISHED
            await self._established(tls, session.tls)
        except Failed as failed:
            self.failure = failed.finding

    async def _connect(self) -> Recorder:
        target, pace = self.plan.target, self.plan.pace
        try:
            sock: trio.abc.Stream = await open_tcp(target.address, target.port, pace)
        except OSError as exc:
            raise Failed(connect_failure(exc, f"{target.address}:{target.port}")) from exc
        if pace is not None:
            pace.on_queued = self._queued
            sock = Paced(sock, pace)
        return Recorder(sock)

    def _queued(self, seconds: float) -> None:
        """Time spent waiting for a work token extends the deadline (scanner.limits)."""
        self.deadline += seconds
        if self.scope is not None:
            self.scope.deadline += seconds

    async def _tls(self, transport: Recorder) -> tuple[trio.SSLStream[trio.abc.Stream], _Session]:
        transport.mark()
        plan = self.plan
        tls: trio.SSLStream[trio.abc.Stream] = trio.SSLStream(
            transport, plan.ctx, server_hostname=plan.target.sni, https_compatible=True)
        plan.dispatch.watch(tls, self.wire)
        self.stream = tls
        try:
            await tls.do_handshake()
        except (trio.BrokenResourceError, OSError) as exc:
            failed = handshake_failure(self.wire, transport.arrived(exc), sni=plan.target.sni,
                                       presenting=plan.presenting,
                                       probing=plan.after_tls is not None)
            self.acceptance = failed.acceptance
            raise Failed(failed.finding) from exc
        self._lap("tls")
        if plan.pace is not None:  # the peer's costly part is done: the probe and close are waits
            plan.pace.demote()
        cipher = tls.cipher()
        info = TlsInfo(version=tls.version() or "unknown", cipher=cipher[0] if cipher else "",
                       alpn=tls.selected_alpn_protocol(),
                       client_cert_requested=self.wire.client_cert_requested,
                       client_cert_sent=self.wire.client_cert_sent)
        self.session = _Session(info, served_chain(tls) or self.wire.server_chain)
        return tls, self.session

    async def _established(self, tls: trio.SSLStream[trio.abc.Stream], info: TlsInfo) -> None:
        """What follows a completed handshake: the TLS 1.3 client-certificate probe, the
        legacy-version verdict, the ``after_tls`` step (the acceptance probe)."""
        if info.version == "TLSv1.3" and self.wire.client_cert_requested and not self.plan.presenting:
            await self._probe_client_cert(tls)
        if info.version in LEGACY_VERSIONS:
            raise Failed(finding("tls-legacy-only",
                                 f"the server negotiated {info.version} (below TLS 1.2)",
                                 version=info.version, cipher=info.cipher))
        if self.plan.after_tls is not None:
            rtt = self.timings.get("connect", CLIENT_CERT_PROBE_SECONDS)
            self.acceptance = await self.plan.after_tls(
                Established(tls, self.plan.target, info, self.wire, self.deadline, rtt))

    async def _probe_client_cert(self, tls: trio.SSLStream[trio.abc.Stream]) -> None:
        """TLS 1.3 servers reject a missing client cert only after the handshake completes
        (our Finished is already sent): one short read reveals the certificate_required alert.
        Silence is fine (a SIP server simply waits for us); only an alert counts."""
        budget = probe_budget(self.timings.get("connect", CLIENT_CERT_PROBE_SECONDS),
                              self.timings.get("tls", 0.0), self.deadline - trio.current_time())
        word = await first_word(tls, self.wire, budget)
        if word.heard is Heard.BROKE:
            refusal = refusal_after_handshake(self.wire, word.broke, closed=False)
        else:
            refusal = refusal_after_handshake(self.wire, None, closed=word.heard is Heard.CLOSED)
        if refusal is not None:
            raise Failed(refusal)

    def result(self) -> HandshakeResult:
        session = self.session
        features = self.starttls.features if self.starttls is not None else None
        return HandshakeResult(
            chain=session.chain if session is not None else self.wire.server_chain,
            tls=session.tls if session is not None else None, failure=self.failure,
            timings=MappingProxyType(dict(self.timings)),
            xmpp_features=features.names if features is not None else (),
            starttls_required=features.starttls_required if features is not None else None,
            acceptance=self.acceptance)


# --- entry point ---------------------------------------------------------------------------------


async def handshake(target: Target, *, timeout: float, from_domain: str | None = None,
                    credentials: ClientCredentials | None = None,
                    pace: Pace | None = None,
                    after_tls: AfterTls | None = None) -> HandshakeResult:
    """Connect, negotiate and handshake with one endpoint within ``timeout`` seconds of the
    peer's time: with ``pace`` (:mod:`scanner.limits`), time queued for work is added.

    ``after_tls`` (with ``credentials``: the acceptance probe) runs on the established
    connection, inside the same deadline, and its verdict is the result's ``acceptance``.
    Never raises (except ``trio.Cancelled``): every outcome is a HandshakeResult.
    """
    start = trio.current_time()
    try:
        ctx, dispatch = client_context(target.service, credentials)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return HandshakeResult((), None, finding("scan-error", f"cannot prepare TLS: {exc}",
                                                 error=str(exc)), MappingProxyType({}))
    plan = _Plan(target, ctx, dispatch, from_domain, credentials is not None, pace, after_tls)
    attempt = _Attempt(plan, deadline=start + timeout)
    try:
        with trio.move_on_after(timeout) as scope:
            attempt.scope = scope
            await attempt.run()
        if scope.cancelled_caught and attempt.session is None and attempt.failure is None:
            received = attempt.recorder.received if attempt.recorder is not None else 0
            where = f"{target.address}:{target.port}"
            attempt.failure = timeout_failure(attempt.phase.value, where, received)
    except Exception as exc:  # a bug of ours must not take the sibling endpoints down
        attempt.failure = finding("scan-error", f"internal error: {exc!r}", error=repr(exc))
    finally:
        if attempt.stream is not None:
            await close(attempt.stream, polite=attempt.session is not None)
            if isinstance(attempt.stream, trio.SSLStream):
                release(attempt.stream)  # freed now, not at the next garbage collection
        if pace is not None:
            pace.give()
    attempt.timings["total"] = trio.current_time() - start
    return attempt.result()
