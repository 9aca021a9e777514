"""The connection under TLS (Edges: trio): the TCP connect, the plaintext XMPP STARTTLS phase,
the recorder of what the server sent, and the close.

Theory of this module
---------------------
* Say what the wire carried. The transport is wrapped in a :class:`Recorder` that counts the
  bytes the server sent and keeps the first few of the TLS phase, so a failure names its cause
  (:func:`broke` hands them to :mod:`scanner.tlswire`, with what trio and OpenSSL said): a
  close before any answer, a reset after N bytes, plaintext SIP or HTTP on a TLS port.
* What the peer says is read by the sans-I/O :class:`scanner.xmpp.XmppNegotiator`; this module
  only moves its bytes, at most ``MAX_READ`` per read, so the negotiator's bounds are ours.
* A step that ends the attempt raises :class:`Failed` with the registered finding it means;
  what a step learned before failing (the stream features) stays readable on its object, also
  when the endpoint's deadline cancels it mid-way.
* No deadline here: :func:`scanner.handshake.handshake` holds the one deadline per endpoint.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import trio

from scanner.findings import Finding, finding
from scanner.limits import Pace
from scanner.tlswire import HEAD_BYTES, Arrived, WireLog
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

MAX_READ: Final = 8192
POLITE_CLOSE_SECONDS: Final = 0.2  # at most this long to send close_notify, then hang up


class Failed(Exception):
    """A step ended the attempt with this finding."""

    def __init__(self, result: Finding) -> None:
        super().__init__(result.message)
        self.finding = result


async def open_tcp(address: str, port: int, pace: Pace | None) -> trio.SocketStream:
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


def connect_failure(exc: OSError, where: str) -> Finding:
    """trio.open_tcp_stream wraps per-address errors; look through to the real one."""
    causes: list[BaseException] = [exc]
    if isinstance(exc.__cause__, BaseExceptionGroup):
        causes = list(exc.__cause__.exceptions)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return finding("connect-refused", f"{where} refused the connection")
    detail = "; ".join(str(c) for c in causes)
    return finding("connect-error", f"cannot connect to {where}: {detail}", error=detail)


class Recorder(trio.abc.Stream):
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

    def arrived(self, exc: BaseException) -> Arrived:
        """The evidence of a broken TLS phase: the bytes since :meth:`mark` and ``exc``."""
        return broke(exc, self.head, self.received - self.marked_at)

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


def broke(exc: BaseException, head: bytes = b"", received: int = 0) -> Arrived:
    """What trio and OpenSSL said when a stream broke, as :mod:`scanner.tlswire` reads it."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return Arrived(head=head, received=received, reason=ssl_reason(exc),
                   error=str(cause) or type(cause).__name__,
                   reset=isinstance(cause, ConnectionResetError),
                   eof=isinstance(cause, ssl.SSLEOFError))


def ssl_reason(exc: BaseException) -> str | None:
    """The OpenSSL reason (e.g. ``TLSV13_ALERT_CERTIFICATE_REQUIRED``) behind a trio error."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, ssl.SSLError):
            reason: Any = getattr(candidate, "reason", None)
            return str(reason) if reason else None
    return None


class StartTls:
    """The plaintext XMPP phase of one connection, up to ``<proceed/>`` (RFC 6120 5.4).

    :meth:`run` returns when the next byte on the wire is TLS's, or raises :class:`Failed`;
    ``features`` is the last ``<stream:features/>`` the peer sent, kept whatever happens next.
    """

    def __init__(self, domain: str, from_domain: str | None) -> None:
        self.domain = domain
        self.negotiator = XmppNegotiator(domain, from_domain)
        self.features: Features | None = None

    async def run(self, stream: trio.abc.Stream) -> None:
        negotiator, domain = self.negotiator, self.domain
        await _send(stream, negotiator.initiate())
        while True:
            event = await self._next_event(stream)
            if isinstance(event, Proceed):
                return
            if isinstance(event, Features):
                self.features = event
                if not event.starttls:
                    raise Failed(finding("starttls-not-offered",
                                         f"{domain}: stream features do not offer STARTTLS",
                                         features=list(event.names)))
                await _send(stream, negotiator.start_tls())
            else:
                _raise_for_event(event, domain)

    async def _next_event(self, stream: trio.abc.Stream) -> Event:
        negotiator = self.negotiator
        try:
            while True:
                event = negotiator.next_event()
                if not isinstance(event, NeedData):
                    return event
                negotiator.receive_data(await _receive(stream))
        except RemoteProtocolError as exc:
            raise Failed(finding("protocol-error", f"XMPP negotiation: {exc}",
                                 reason=str(exc))) from exc


def _raise_for_event(event: Event, domain: str) -> None:
    """Turn a negotiation event that is not progress into the finding it means."""
    if isinstance(event, StartTlsFailure):
        raise Failed(finding("starttls-refused", f"{domain}: <starttls/> answered <failure/>"))
    if isinstance(event, StreamError):
        raise Failed(finding("stream-error", f"{domain}: stream error {event.condition}",
                             condition=event.condition, text=event.text))
    if isinstance(event, StreamClosed):
        reason = "stream closed before <proceed/>"
        raise Failed(finding("protocol-error", f"{domain}: {reason}", reason=reason))
    # StreamOpened and anything informational: keep negotiating


async def _send(stream: trio.abc.Stream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, OSError) as exc:
        raise Failed(_lost(exc)) from exc


async def _receive(stream: trio.abc.Stream) -> bytes:
    try:
        return bytes(await stream.receive_some(MAX_READ))
    except (trio.BrokenResourceError, OSError) as exc:
        raise Failed(_lost(exc)) from exc


def _lost(exc: BaseException, phase: str = "starttls") -> Finding:
    cause = exc.__cause__ or exc
    return finding("connect-error", f"connection lost during {phase}: {cause!r}",
                   error=repr(cause), phase=phase)


async def close(stream: trio.abc.Stream, *, polite: bool) -> None:
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


class Heard(StrEnum):
    """What a TLS 1.3 server did first after our Finished."""

    TICKET = "ticket"  # a NewSessionTicket: it accepted us
    DATA = "data"  # application data: it accepted us and spoke first
    CLOSED = "closed"  # it closed the connection (after an alert, or bare)
    BROKE = "broke"  # the read failed: an alert, a reset
    SILENCE = "silence"  # nothing within the wait: no verdict


@dataclass(frozen=True, slots=True)
class FirstWord:
    heard: Heard
    data: bytes = b""  # DATA: what it said (the caller's protocol reads it next)
    broke: Arrived | None = None  # BROKE: what trio and OpenSSL said


async def first_word(tls: trio.SSLStream[Any], wire: WireLog, wait: float) -> FirstWord:
    """Read what a TLS 1.3 server does first after the handshake, within ``wait`` seconds.

    A TLS 1.3 server judges our client certificate (or its absence) only after our Finished,
    and its first record says how: a ticket or data (accepted), an alert or a close (refused).
    One read; a ticket ends the wait at once (``wire.on_ticket``), for trio's read would
    otherwise wait on for application data that a ticket does not bring. The client-
    certificate probe and the acceptance probe both ask this, each reading the answer its way.
    """
    if wire.ticket_seen:
        return FirstWord(Heard.TICKET)
    with trio.move_on_after(max(wait, 0.0)) as scope:
        wire.on_ticket = scope.cancel
        try:
            data = await tls.receive_some(MAX_READ)
        except (trio.BrokenResourceError, OSError) as exc:  # ssl.SSLError is an OSError
            return FirstWord(Heard.BROKE, broke=broke(exc))
        finally:
            wire.on_ticket = None
        return FirstWord(Heard.DATA, bytes(data)) if data else FirstWord(Heard.CLOSED)
    return FirstWord(Heard.TICKET if wire.ticket_seen else Heard.SILENCE)
