"""Handshakes that capture, never verify: connect, negotiate (XMPP STARTTLS), TLS, record.

Theory of this module
---------------------
* Capture, don't judge. The TLS client accepts anything (no verification, TLS 1.0 and
  ``@SECLEVEL=0`` allowed) so that a broken or legacy server still shows its chain; the
  verifier judges the chain later. The only judgement here is about the *connection*.
* Errors are data. :func:`handshake` returns a :class:`HandshakeResult` for every endpoint,
  whatever happens (only ``trio.Cancelled`` escapes), with a registered finding as
  ``failure``. A scan of many endpoints in one nursery must never lose siblings to one peer.
* One deadline per endpoint. ``timeout`` bounds connect + negotiation + handshake as a whole
  (``trio.move_on_after``), and every read is bounded in size, so a peer that drips a byte a
  second is cut off exactly like a silent one.
* See what the wire said, not only what OpenSSL concluded. A TLS message callback feeds the
  sans-I/O :class:`scanner.tlswire.WireLog` (the server's Certificate message, whether it
  asked for a client certificate, the alerts it sent, whether we sent a certificate), and
  :mod:`scanner.tlswire` decides what a failure means. So a server that demands mutual TLS
  and aborts still yields its chain, and the abort is reported as ``client-certificate-required``.
  The private hooks this needs (the message callback, trio's SSLObject, the served chain
  before Python 3.13) are :mod:`scanner.tls_compat`'s, one tested shim each.
* The plaintext XMPP phase is delegated to the sans-I/O :mod:`scanner.xmpp`, which guarantees
  no byte after ``<proceed/>`` is silently swallowed before TLS begins.
* Say what the wire carried. The transport is wrapped in a :class:`_Recorder` that counts the
  bytes the server sent and keeps the first few of the TLS phase, so a failure names its cause:
  a close before any answer, a reset after N bytes, plaintext SIP or HTTP on a TLS port, a
  message over OpenSSL's 100 KiB handshake limit (which is also our memory bound).
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import ssl
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import trio

from scanner.acceptance_model import Acceptance
from scanner.findings import Finding, finding
from scanner.limits import Pace, Paced
from scanner.results import TlsInfo as TlsInfo
from scanner.srv import SERVICES
from scanner.tls_compat import MessageDispatch, install_msg_callback, served_chain
from scanner.tlswire import (
    HEAD_BYTES,
    Arrived,
    WireLog,
    handshake_failure,
    refusal_after_handshake,
    timeout_failure,
)
from scanner.xmpp import (
    Event,
    Features,
    NeedData,
    Proceed,
    RemoteProtocolError,
    StartTlsFailure,
    StreamClosed,
    StreamError,
    XmppNegotiator,
)

XMPPS_ALPN: Final = "xmpp-server"
MAX_READ: Final = 8192
CLIENT_CERT_PROBE_SECONDS: Final = 0.3  # ceiling of the post-handshake wait for an alert
CLIENT_CERT_PROBE_FLOOR: Final = 0.05  # ... and its floor, whatever the measured RTT
POLITE_CLOSE_SECONDS: Final = 0.2  # at most this long to send close_notify, then hang up
LEGACY_VERSIONS: Final = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})



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
class ClientCredentials:
    """The certificate we present. ``pem`` (key, leaf and intermediates, decrypted) is set when
    it came from a PFX or one PEM file (``--as-edge``); the files are then only its origin."""

    cert_file: Path
    key_file: Path
    pem: bytes | None = field(default=None, repr=False)

    def load_into(self, ctx: ssl.SSLContext) -> None:
        if self.pem is None:
            ctx.load_cert_chain(self.cert_file, self.key_file)
            return
        # OpenSSL loads keys from files only: a private directory, for the time of one call.
        with tempfile.TemporaryDirectory(prefix="fedscan-") as tmp:
            path = Path(tmp) / "identity.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(self.pem)
            ctx.load_cert_chain(path)


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


# --- the wire observer ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _shared_context(alpn: bool, credentials: ClientCredentials | None
                    ) -> tuple[ssl.SSLContext, MessageDispatch]:
    """Contexts are costly to build (~0.15 ms each) and identical for every endpoint of a
    kind, so one per (ALPN, client certificate) serves the whole scan."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLSv1 is deprecated: that is exactly why we probe for it
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if alpn:
        ctx.set_alpn_protocols([XMPPS_ALPN])
    if credentials is not None:
        credentials.load_into(ctx)
    dispatch = MessageDispatch()
    install_msg_callback(ctx, dispatch)
    return ctx, dispatch


def client_context(service: str, credentials: ClientCredentials | None
                   ) -> tuple[ssl.SSLContext, MessageDispatch]:
    """A TLS client that accepts any certificate and any version down to TLS 1.0.

    Raises OSError / ssl.SSLError / ValueError for our own problems (e.g. the client
    certificate cannot be loaded); :func:`handshake` turns these into ``scan-error``.
    """
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return _shared_context(service == "xmpps-server", credentials)


# --- the transport recorder ------------------------------------------------------------------------


class _Recorder(trio.abc.Stream):
    """A transparent stream wrapper: how many bytes the server sent, and the first
    ``HEAD_BYTES`` since :meth:`mark` (the start of TLS), as evidence for failure reports."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.received = 0
        self.head = b""
        self.marked_at = 0

    def mark(self) -> None:
        self.head = b""
        self.marked_at = self.received

    @property
    def since_mark(self) -> int:
        return self.received - self.marked_at

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        if len(self.head) < HEAD_BYTES:
            self.head += bytes(data[: HEAD_BYTES - len(self.head)])
        self.received += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- one attempt ----------------------------------------------------------------------------------


class _Failed(Exception):
    """Internal: a step ended the attempt with this finding."""

    def __init__(self, result: Finding) -> None:
        super().__init__(result.message)
        self.finding = result


@dataclass
class _Attempt:
    """Mutable record of one endpoint's attempt; frozen into a HandshakeResult at the end."""

    target: Target
    ctx: ssl.SSLContext
    dispatch: MessageDispatch
    wire: WireLog
    from_domain: str | None
    has_credentials: bool
    deadline: float
    pace: Pace | None = None  # see scanner.limits: work tokens, active slot, deadline pauses
    scope: trio.CancelScope | None = None
    phase: str = "connect"
    stream: trio.abc.Stream | None = None
    recorder: _Recorder | None = None
    tls: TlsInfo | None = None
    chain: tuple[bytes, ...] = ()
    failure: Finding | None = None
    features: tuple[str, ...] = ()
    starttls_required: bool | None = None
    timings: dict[str, float] = field(default_factory=dict)
    after_tls: AfterTls | None = None
    acceptance: Acceptance | None = None
    _mark: float = 0.0

    def _lap(self, name: str) -> None:
        now = trio.current_time()
        self.timings[name] = now - self._mark
        self._mark = now

    async def run(self) -> None:
        self._mark = trio.current_time()
        try:
            self.stream = await self._connect()
            self._lap("connect")
            if not SERVICES[self.target.service].direct_tls:  # XMPP STARTTLS
                self.phase = "starttls"
                await self._starttls(self.stream)
                self._lap("starttls")
            self.phase = "tls"
            await self._tls(self.stream)
        except _Failed as failed:
            self.failure = failed.finding

    # -- steps -----------------------------------------------------------------------------------

    async def _connect(self) -> _Recorder:
        t = self.target
        try:
            sock: trio.abc.Stream = await _open_tcp(t.address, t.port, self.pace)
        except OSError as exc:
            raise _Failed(_connect_failure(exc, t)) from exc
        if self.pace is not None:
            self.pace.on_queued = self._queued
            sock = Paced(sock, self.pace)
        self.recorder = _Recorder(sock)
        return self.recorder

    def _queued(self, seconds: float) -> None:
        """Time spent waiting for a work token extends the deadline (scanner.limits)."""
        self.deadline += seconds
        if self.scope is not None:
            self.scope.deadline += seconds

    async def _starttls(self, stream: trio.abc.Stream) -> None:
        domain = self.target.xmpp_domain or self.target.host
        negotiator = XmppNegotiator(domain, self.from_domain)
        await self._send(stream, negotiator.initiate())
        while True:
            event = await self._next_event(stream, negotiator)
            if isinstance(event, Proceed):
                return
            if isinstance(event, Features):
                self.features = event.names
                self.starttls_required = event.starttls_required
                if not event.starttls:
                    raise _Failed(finding("starttls-not-offered",
                                          f"{domain}: stream features do not offer STARTTLS",
                                          features=list(event.names)))
                await self._send(stream, negotiator.start_tls())
            else:
                _raise_for_event(event, domain)

    async def _next_event(self, stream: trio.abc.Stream, negotiator: XmppNegotiator) -> Event:
        try:
            while True:
                event = negotiator.next_event()
                if not isinstance(event, NeedData):
                    return event
                negotiator.receive_data(await self._receive(stream))
        except RemoteProtocolError as exc:
            raise _Failed(finding("protocol-error", f"XMPP negotiation: {exc}",
                                  reason=str(exc))) from exc

    async def _send(self, stream: trio.abc.Stream, data: bytes) -> None:
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, OSError) as exc:
            raise _Failed(_lost(exc, self.phase)) from exc

    async def _receive(self, stream: trio.abc.Stream) -> bytes:
        try:
            return bytes(await stream.receive_some(MAX_READ))
        except (trio.BrokenResourceError, OSError) as exc:
            raise _Failed(_lost(exc, self.phase)) from exc

    async def _tls(self, transport: trio.abc.Stream) -> None:
        if self.recorder is not None:
            self.recorder.mark()
        tls = trio.SSLStream(transport, self.ctx, server_hostname=self.target.sni,
                             https_compatible=True)
        self.dispatch.watch(tls, self.wire)
        self.stream = tls
        try:
            await tls.do_handshake()
        except (trio.BrokenResourceError, OSError) as exc:
            self.chain = self.wire.server_chain
            raise _Failed(self._tls_failure(exc)) from exc
        self._lap("tls")
        if self.pace is not None:  # the peer's costly part is done: the probe and close are waits
            self.pace.demote()
        self.phase = "established"
        self.chain = served_chain(tls) or self.wire.server_chain
        self.tls = self._tls_info(tls)
        await self._probe_client_cert(tls)
        if self.tls.version in LEGACY_VERSIONS:
            raise _Failed(finding("tls-legacy-only",
                                  f"the server negotiated {self.tls.version} (below TLS 1.2)",
                                  version=self.tls.version, cipher=self.tls.cipher))
        if self.after_tls is not None:
            rtt = self.timings.get("connect", CLIENT_CERT_PROBE_SECONDS)
            self.acceptance = await self.after_tls(
                Established(tls, self.target, self.tls, self.wire, self.deadline, rtt))

    def _tls_info(self, tls: trio.SSLStream[trio.abc.Stream]) -> TlsInfo:
        cipher = tls.cipher()
        return TlsInfo(version=tls.version() or "unknown", cipher=cipher[0] if cipher else "",
                       alpn=tls.selected_alpn_protocol(),
                       client_cert_requested=self.wire.client_cert_requested,
                       client_cert_sent=self.wire.client_cert_sent)

    async def _probe_client_cert(self, tls: trio.SSLStream[trio.abc.Stream]) -> None:
        """TLS 1.3 servers reject a missing client cert only after the handshake completes
        (our Finished is already sent): one short read reveals the certificate_required alert.
        Silence is fine (a SIP server simply waits for us); only an alert counts."""
        assert self.tls is not None
        if (self.tls.version != "TLSv1.3" or not self.wire.client_cert_requested
                or self.has_credentials):
            return
        # The alert follows our Finished by one round trip; the TCP connect measured one.
        rtt = self.timings.get("connect", CLIENT_CERT_PROBE_SECONDS)
        budget = min(
            CLIENT_CERT_PROBE_SECONDS,
            max(CLIENT_CERT_PROBE_FLOOR, 4 * rtt),
            (self.deadline - trio.current_time()) / 2,
        )
        if self.wire.ticket_seen:
            return  # the server already accepted us: it sent a session ticket
        with trio.move_on_after(max(budget, 0.0)) as scope:
            self.wire.on_ticket = scope.cancel  # a ticket means "accepted": stop waiting
            try:
                data = await tls.receive_some(MAX_READ)
            except (trio.BrokenResourceError, OSError) as exc:
                refusal = refusal_after_handshake(self.wire, _broke(exc), closed=False)
                if refusal is not None:
                    raise _Failed(refusal) from exc
            else:
                refusal = refusal_after_handshake(self.wire, None, closed=not data)
                if refusal is not None:
                    raise _Failed(refusal)

    def _tls_failure(self, exc: BaseException) -> Finding:
        rec = self.recorder
        arrived = _broke(exc, rec.head, rec.since_mark) if rec is not None else _broke(exc)
        failed = handshake_failure(self.wire, arrived, sni=self.target.sni,
                                   presenting=self.has_credentials,
                                   probing=self.after_tls is not None)
        self.acceptance = failed.acceptance
        return failed.finding

    def timeout_finding(self) -> Finding:
        count = self.recorder.received if self.recorder is not None else 0
        return timeout_failure(self.phase, self._where(), count)

    def _where(self) -> str:
        return f"{self.target.address}:{self.target.port}"

    def result(self) -> HandshakeResult:
        return HandshakeResult(chain=self.chain, tls=self.tls, failure=self.failure,
                               timings=MappingProxyType(dict(self.timings)),
                               xmpp_features=self.features,
                               starttls_required=self.starttls_required,
                               acceptance=self.acceptance)


# --- helpers ------------------------------------------------------------------------------------------


def _raise_for_event(event: Event, domain: str) -> None:
    """Turn a negotiation event that is not progress into the finding it means."""
    if isinstance(event, StartTlsFailure):
        raise _Failed(finding("starttls-refused", f"{domain}: <starttls/> answered <failure/>"))
    if isinstance(event, StreamError):
        raise _Failed(finding("stream-error", f"{domain}: stream error {event.condition}",
                              condition=event.condition, text=event.text))
    if isinstance(event, StreamClosed):
        reason = "stream closed before <proceed/>"
        raise _Failed(finding("protocol-error", f"{domain}: {reason}", reason=reason))
    # StreamOpened and anything informational: keep negotiating


async def _open_tcp(address: str, port: int, pace: Pace | None) -> trio.SocketStream:
    """A TCP connection to an address literal: a non-blocking connect and a wait for it that
    :class:`scanner.limits.Pace` may interrupt and resume (a filtered peer stops counting as
    active after the grace period). ``trio.open_tcp_stream`` would also resolve the literal
    and run happy eyeballs in a nursery of its own for one address: twice the CPU of this on
    loopback (0.23 vs 0.13 s per 1,000 connects, docs/performance.md)."""
    raw = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    try:
        raw.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            raw.connect((address, port))
        if pace is not None:
            await pace.wait(lambda: trio.lowlevel.wait_writable(raw), then_work=False, answer=False)
        else:
            await trio.lowlevel.wait_writable(raw)
    except BaseException:
        raw.close()
        raise
    error = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raw.close()
        raise OSError(error, os.strerror(error))  # ECONNREFUSED: a ConnectionRefusedError
    return trio.SocketStream(trio.socket.from_stdlib_socket(raw))


def _connect_failure(exc: OSError, target: Target) -> Finding:
    """trio.open_tcp_stream wraps per-address errors; look through to the real one."""
    causes: list[BaseException] = [exc]
    if isinstance(exc.__cause__, BaseExceptionGroup):
        causes = list(exc.__cause__.exceptions)
    where = f"{target.address}:{target.port}"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return finding("connect-refused", f"{where} refused the connection")
    detail = "; ".join(str(c) for c in causes)
    return finding("connect-error", f"cannot connect to {where}: {detail}", error=detail)


def _lost(exc: BaseException, phase: str) -> Finding:
    cause = exc.__cause__ or exc
    return finding("connect-error", f"connection lost during {phase}: {cause!r}",
                   error=repr(cause), phase=phase)


def _ssl_reason(exc: BaseException) -> str | None:
    """The OpenSSL reason (e.g. ``TLSV13_ALERT_CERTIFICATE_REQUIRED``) behind a trio error."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, ssl.SSLError):
            reason: Any = getattr(candidate, "reason", None)
            return str(reason) if reason else None
    return None


def _broke(exc: BaseException, head: bytes = b"", received: int = 0) -> Arrived:
    """What trio and OpenSSL said when a stream broke, as :mod:`scanner.tlswire` reads it."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return Arrived(head=head, received=received, reason=_ssl_reason(exc),
                   error=str(cause) or type(cause).__name__,
                   reset=isinstance(cause, ConnectionResetError),
                   eof=isinstance(cause, ssl.SSLEOFError))


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
    wire = WireLog()
    try:
        ctx, dispatch = client_context(target.service, credentials)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return HandshakeResult((), None, finding("scan-error", f"cannot prepare TLS: {exc}",
                                                 error=str(exc)), MappingProxyType({}))
    attempt = _Attempt(target, ctx, dispatch, wire, from_domain, credentials is not None,
                       deadline=start + timeout, pace=pace, after_tls=after_tls)
    try:
        with trio.move_on_after(timeout) as scope:
            attempt.scope = scope
            await attempt.run()
        if scope.cancelled_caught and attempt.tls is None and attempt.failure is None:
            attempt.chain = attempt.chain or wire.server_chain
            attempt.failure = attempt.timeout_finding()
    except Exception as exc:  # a bug of ours must not take the sibling endpoints down
        attempt.failure = finding("scan-error", f"internal error: {exc!r}", error=repr(exc))
    finally:
        if attempt.stream is not None:
            await _close(attempt.stream, polite=attempt.tls is not None)
        if pace is not None:
            pace.give()
    attempt.timings["total"] = trio.current_time() - start
    return attempt.result()


async def _close(stream: trio.abc.Stream, *, polite: bool) -> None:
    """After a completed handshake, say goodbye (TLS close_notify) so that the peer logs a
    clean close, not "unexpected EOF" for every scan (prosody does); briefly, and never more
    than a forceful close when the peer does not read."""
    if polite:
        with trio.move_on_after(POLITE_CLOSE_SECONDS):
            try:
                await stream.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError):
                pass
            else:
                return
    await trio.aclose_forcefully(stream)
