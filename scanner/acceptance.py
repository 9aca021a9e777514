"""The acceptance probe: on a connection where we presented our Edge's certificate, observe the
partner's verdict on it, at the TLS, SIP and XMPP levels (Edge: trio I/O).

Theory of this module
---------------------
* It runs inside :func:`scanner.handshake.handshake` (its ``after_tls`` hook), on the same
  connection and under the same per-endpoint deadline: one connection per endpoint, and a
  partner that stalls costs its deadline, never more.
* TLS first, and carefully. In TLS 1.3 the server judges our certificate after we sent our
  Finished, so the handshake "succeeds" on our side before the verdict exists. We wait for the
  first record the server sends (a session ticket, data, or an alert) before writing
  anything: a request written into a connection the server has just closed makes its kernel
  answer with a reset, and the reset can destroy the alert that would have told us why.
  In TLS 1.2 the verdict was part of the handshake (see ``_rejected_in_handshake`` there).
* Then the protocol a federating Edge speaks: SIP sends one OPTIONS (RFC 3261 11) and reads
  the first final response with :mod:`scanner.sip`; XMPP restarts the stream and tries SASL
  EXTERNAL (XEP-0178) with :mod:`scanner.xmpp_auth`. Dialback is never performed.
* Everything observed is data (:class:`scanner.acceptance_model.Acceptance`); the wording and
  the findings are made in that pure module. This module never raises for a peer's doing.
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
from dataclasses import dataclass
from typing import Final

import trio

from scanner import __version__
from scanner.acceptance_model import (
    Acceptance,
    SipVerdict,
    TlsVerdict,
    XmppVerdict,
    alert_name,
    client_certificate_rejected,
    sip_findings,
    xmpp_findings,
)
from scanner.findings import Finding
from scanner.handshake import MAX_READ, AfterTls, Established, verdict_wait
from scanner.sip import Closed, NeedData, Response, SipReader, options_request, parse_ms_diagnostics
from scanner.sip import RemoteProtocolError as SipProtocolError
from scanner.transport import Heard, first_word
from scanner.xmpp import (
    Features,
    ProtocolError,
    SaslFailure,
    SaslSuccess,
    StreamClosed,
    StreamError,
)
from scanner.xmpp import NeedData as XmppNeedData
from scanner.xmpp_auth import EXTERNAL, XmppAuthNegotiator, offers_dialback

VERDICT_WAIT_CEILING: Final = 1.0  # seconds to wait for the server's first TLS 1.3 record ...
VERDICT_WAIT_FLOOR: Final = 0.2  # ... and at least this, whatever the measured RTT
CLOSE_MARGIN: Final = 0.05  # leave this much of the deadline to close politely


@dataclass(frozen=True)
class Presenting:
    """Who we are on the wire: our certificate's fingerprint and our domains."""

    certificate_sha256: str | None
    sip_from: str | None
    xmpp_from: str | None
    client_auth: bool = True  # the certificate has Client Authentication EKU (or no EKU)

    def probe(self) -> AfterTls:
        async def run(est: Established) -> Acceptance:
            return await _Probe(est, self).run()

        return run


class _TlsRejected(Exception):
    def __init__(self, alert: str | None) -> None:
        super().__init__(alert)
        self.alert = alert


class _Probe:
    def __init__(self, est: Established, presenting: Presenting) -> None:
        self.est = est
        self.presenting = presenting
        self.pending = b""  # data read while waiting for the TLS verdict

    async def run(self) -> Acceptance:
        sha = self.presenting.certificate_sha256
        tls = await self._tls_verdict()
        if tls.verdict == "rejected":
            return self._rejected(tls)
        service = self.est.target.service
        try:
            with trio.move_on_at(self.est.deadline - CLOSE_MARGIN):
                if service.startswith("sip"):
                    sip = await self._sip()
                    tls = _confirmed(tls, sip.status is not None)
                    return Acceptance(sha, tls, sip=sip, findings=tuple(
                        sip_findings(sip, self.est.target.host)))
                xmpp = await self._xmpp()
                tls = _confirmed(tls, xmpp.external_offered is not None or xmpp.condition is not None)
                domain = self.est.target.xmpp_domain or self.est.target.host
                return Acceptance(sha, tls, xmpp=xmpp, findings=tuple(xmpp_findings(xmpp, domain)))
        except _TlsRejected as rejected:
            return self._rejected(TlsVerdict("rejected", "alert" if rejected.alert else "closed",
                                             rejected.alert))
        # the deadline came first
        if service.startswith("sip"):
            sip = SipVerdict(self._sip_from(), None, error="deadline reached")
            return Acceptance(sha, tls, sip=sip,
                              findings=tuple(sip_findings(sip, self.est.target.host)))
        xmpp = XmppVerdict(self._xmpp_from(), None, None, None, error="deadline reached")
        return Acceptance(sha, tls, xmpp=xmpp)

    def _rejected(self, tls: TlsVerdict) -> Acceptance:
        found: Finding = client_certificate_rejected(tls.alert, in_handshake=False,
                                                     version=self.est.tls.version)
        return Acceptance(self.presenting.certificate_sha256, tls, findings=(found,))

    # -- TLS ---------------------------------------------------------------------------------

    async def _tls_verdict(self) -> TlsVerdict:
        est, wire = self.est, self.est.wire
        if est.tls.version != "TLSv1.3":
            return TlsVerdict("accepted", "handshake")
        wait = verdict_wait(est.rtt, round_trips=8, floor=VERDICT_WAIT_FLOOR,
                            ceiling=VERDICT_WAIT_CEILING, remaining=est.deadline - trio.current_time())
        word = await first_word(est.stream, wire, wait)
        if word.heard is Heard.TICKET:
            return TlsVerdict("accepted", "session-ticket")
        if word.heard is Heard.DATA:
            self.pending = word.data
            return TlsVerdict("accepted", "application-data")
        if word.heard is Heard.SILENCE:
            return TlsVerdict("unknown", "silence")
        alert = alert_name(wire.alert) or alert_name(word.broke.reason if word.broke else None)
        return TlsVerdict("rejected", "alert" if alert else "closed", alert)

    async def _receive(self) -> bytes:
        """One read; an alert or a close from the partner is :class:`_TlsRejected`."""
        try:
            return bytes(await self.est.stream.receive_some(MAX_READ))
        except (trio.BrokenResourceError, OSError, ssl.SSLError) as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            reason = getattr(cause, "reason", None)
            raise _TlsRejected(alert_name(self.est.wire.alert) or alert_name(
                str(reason) if reason else None)) from exc

    async def _send(self, data: bytes) -> None:
        try:
            await self.est.stream.send_all(data)
        except (trio.BrokenResourceError, OSError, ssl.SSLError) as exc:
            raise _TlsRejected(alert_name(self.est.wire.alert)) from exc

    # -- SIP ---------------------------------------------------------------------------------

    def _sip_from(self) -> str:
        return self.presenting.sip_from or "fedscan.invalid"

    async def _sip(self) -> SipVerdict:
        host, port = _local_address(self.est)
        request = options_request(
            target=self.est.target.host, from_domain=self._sip_from(), local_host=host,
            local_port=port, call_id=secrets.token_hex(12), tag=secrets.token_hex(6),
            branch=secrets.token_hex(8), user_agent=f"fedscan/{__version__}")
        await self._send(request.data)
        reader = SipReader()
        provisional: list[int] = []
        data = self.pending
        while True:
            try:
                if data:
                    reader.receive_data(data)
                event = reader.next_event()
                # 1xx are provisional; a request from the partner (its own OPTIONS) is no answer
                while not isinstance(event, NeedData | Closed) and not (
                        isinstance(event, Response) and event.final):
                    if isinstance(event, Response):
                        provisional.append(event.status)
                    event = reader.next_event()
            except SipProtocolError as exc:
                return SipVerdict(self._sip_from(), None, provisional=tuple(provisional), error=str(exc))
            if isinstance(event, Response):
                diag = event.header("ms-diagnostics") or event.header("ms-diagnostics-public")
                return SipVerdict(self._sip_from(), event.status, event.reason, tuple(provisional),
                                  parse_ms_diagnostics(diag).to_json() if diag else None)
            if isinstance(event, Closed):
                return SipVerdict(self._sip_from(), None, provisional=tuple(provisional),
                                  error="the partner closed the connection without a final answer")
            data = await self._receive()
            if not data:
                reader.receive_data(b"")

    # -- XMPP --------------------------------------------------------------------------------

    def _xmpp_from(self) -> str:
        return self.presenting.xmpp_from or "fedscan.invalid"

    async def _xmpp(self) -> XmppVerdict:
        domain = self.est.target.xmpp_domain or self.est.target.host
        negotiator = XmppAuthNegotiator(domain, self._xmpp_from())
        await self._send(negotiator.initiate())
        external: bool | None = None
        dialback: bool | None = None
        data = self.pending
        try:
            while True:
                if data:
                    negotiator.receive_data(data)
                event = negotiator.next_event()
                if isinstance(event, XmppNeedData):
                    data = await self._receive()
                    if not data:
                        negotiator.receive_data(b"")
                    continue
                data = b""
                if isinstance(event, Features):
                    external, dialback = EXTERNAL in event.mechanisms, offers_dialback(event)
                    if not external:
                        return XmppVerdict(self._xmpp_from(), False, dialback, None)
                    await self._send(negotiator.auth_external())
                elif isinstance(event, SaslSuccess):
                    await self._goodbye()
                    return XmppVerdict(self._xmpp_from(), external, dialback, "success")
                elif isinstance(event, SaslFailure):
                    return XmppVerdict(self._xmpp_from(), external, dialback, "failure",
                                       event.condition, event.text)
                elif isinstance(event, StreamError):
                    return XmppVerdict(self._xmpp_from(), external, dialback, None,
                                       event.condition, event.text)
                elif isinstance(event, StreamClosed):
                    return XmppVerdict(self._xmpp_from(), external, dialback, None,
                                       error="the partner closed the stream")
        except ProtocolError as exc:
            return XmppVerdict(self._xmpp_from(), external, dialback, None, error=str(exc))

    async def _goodbye(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, OSError, ssl.SSLError):
            await self.est.stream.send_all(b"</stream:stream>")


def _confirmed(tls: TlsVerdict, answered: bool) -> TlsVerdict:
    """A protocol answer inside TLS proves the partner kept the connection: TLS accepted."""
    if tls.verdict == "unknown" and answered:
        return TlsVerdict("accepted", "application-data")
    return tls


def _local_address(est: Established) -> tuple[str, int]:
    transport: object = est.stream.transport_stream
    for _ in range(4):  # through the recorder and pacing wrappers to the socket stream
        if hasattr(transport, "socket"):
            break
        transport = getattr(transport, "inner", getattr(transport, "stream", None))
    sock = getattr(transport, "socket", None)
    try:
        host, port = sock.getsockname()[:2] if sock is not None else ("fedscan.invalid", 5061)
    except OSError:
        return "fedscan.invalid", 5061
    return str(host), int(port)
