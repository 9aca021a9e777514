"""Sans-I/O reading of what a TLS server sent, and what a failed handshake means (RFC 8446,
RFC 5246).

Theory of this module
---------------------
OpenSSL plays the handshake; this module reads the evidence, in the manner of h11 and
:mod:`scanner.xmpp`: no socket, no ``ssl``, no trio, no clock, so every outcome is a few bytes
in a unit test (``tests/test_tlswire.py``). The driver (:mod:`scanner.handshake`) feeds it and
turns its answers into the result. The rules it keeps:

* Two kinds of evidence. :class:`WireLog` eats the handshake messages and alerts OpenSSL hands
  its message callback, whole and (TLS 1.3) decrypted: the server's chain, whether it asked
  for a client certificate, the alerts that count, whether we sent a certificate.
  :class:`Arrived` is what the transport carried when the handshake broke: the first
  :data:`HEAD_BYTES` raw bytes of the TLS phase, how many came, and OpenSSL's conclusion.
* Evidence, not a parser a peer can crash. A malformed Certificate message yields what parsed
  cleanly so far, a truncated record ends the walk, nothing here raises for a peer's doing.
* Bounded. OpenSSL refuses a handshake message over 100 KiB before the callback sees it, and
  the log keeps slices of one Certificate message and one alert name; the raw head is
  :data:`HEAD_BYTES`. Parsing happens only where the driver ran it before: the Certificate
  message when it arrives, the head only once a handshake has failed.
* The wire decides which alert counts, not OpenSSL's summary: up to TLS 1.2 a warning does not
  end a handshake (RFC 5246 7.2), so it is never the reason given for a later failure.
* One verdict per outcome, strongest evidence first: a refusal of the certificate we presented,
  a demand for one we did not present, an unknown server name, then what arrived (an alert,
  plaintext of another protocol, a reset, a close, an oversized message, broken ASN.1).
  Each is a registered finding (:mod:`scanner.findings`) worded as the user reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from scanner.acceptance_model import Acceptance, TlsVerdict, alert_name, client_certificate_rejected
from scanner.findings import Finding, finding

# Record content types and handshake message types (RFC 8446 5.1 and 4), as the message
# callback reports them.
CT_ALERT: Final = 21
CT_HANDSHAKE: Final = 22
TLS_CONTENT_TYPES: Final = frozenset(range(20, 25))  # the first byte of any TLS record
HS_NEW_SESSION_TICKET: Final = 4
HS_ENCRYPTED_EXTENSIONS: Final = 8  # TLS 1.3 only, right after the ServerHello
HS_CERTIFICATE: Final = 11
HS_CERTIFICATE_REQUEST: Final = 13
TLS13: Final = 0x0304
ALERT_FATAL: Final = 2
HEAD_BYTES: Final = 48  # raw bytes of the TLS phase kept as evidence of what arrived
_RECORD_HEADER: Final = 5

ALERT_NAMES: Final = MappingProxyType({
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
    42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
    45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
    48: "unknown_ca", 49: "access_denied", 50: "decode_error", 51: "decrypt_error",
    70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
    86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
    120: "no_application_protocol",
})
# Alerts with which a server that insists on mutual TLS ends a handshake without a client cert.
CLIENT_CERT_ALERTS: Final = ("certificate_required", "handshake_failure", "bad_certificate",
                             "access_denied")


def alert_description(code: int) -> str:
    """``unknown_ca`` for 48; ``alert-N`` for a code RFC 8446 does not name."""
    return ALERT_NAMES.get(code, f"alert-{code}")


# --- messages ---------------------------------------------------------------------------------


def parse_certificate_message(body: bytes, *, tls13: bool) -> tuple[bytes, ...]:
    """DER certificates from a Certificate handshake message body (header stripped).

    TLS 1.2: ``list_len(3) {cert_len(3) DER}*``. TLS 1.3 adds a request context before the
    list and ``ext_len(2) extensions`` after each certificate. Malformed input yields what
    parsed cleanly so far: this is evidence, not a parser a peer can crash.
    """
    pos = 0
    if tls13:
        if not body:
            return ()
        pos = 1 + body[0]
    if pos + 3 > len(body):
        return ()
    end = min(len(body), pos + 3 + int.from_bytes(body[pos : pos + 3], "big"))
    pos += 3
    certs: list[bytes] = []
    while pos + 3 <= end:
        size = int.from_bytes(body[pos : pos + 3], "big")
        pos += 3
        if pos + size > end:
            break
        certs.append(body[pos : pos + size])
        pos += size
        if tls13:
            if pos + 2 > end:
                break
            pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    return tuple(certs)


@dataclass(slots=True)
class WireLog:
    """What the message callback saw on one connection: an observer fed message by message
    (:meth:`on_message`), read by the driver and by a post-handshake step (the acceptance
    probe reads ``alert``, ``ticket_seen`` and sets ``on_ticket``)."""

    client_cert_requested: bool = False
    client_cert_sent: bool = False
    server_chain: tuple[bytes, ...] = ()
    alert: str | None = None  # the last alert the server sent that ends a handshake
    ticket_seen: bool = False  # a TLS 1.3 NewSessionTicket: the server accepted our Finished
    tls13: bool = False  # the server's EncryptedExtensions arrived: TLS 1.3 was negotiated
    on_ticket: Callable[[], object] | None = None

    def on_message(self, _conn: object, direction: str, version: int, content_type: int,
                   msg_type: int, data: bytes) -> None:
        """The message callback's arguments: handshake messages arrive whole, 4-byte header
        included (decrypted in TLS 1.3); alerts as ``level, description``."""
        reading = direction == "read"
        if content_type == CT_ALERT and reading and len(data) >= 2:
            name = ALERT_NAMES.get(data[1], f"alert-{data[1]}")
            # Up to TLS 1.2 a warning (level 1) does not end a handshake (RFC 5246 7.2;
            # servers send unrecognized_name as one and carry on), so it must not become the
            # reason a handshake that failed later is given; close_notify is the exception.
            # TLS 1.3 ignores the level: every alert but user_canceled ends the connection.
            # Negotiated TLS 1.3, that is, seen in the EncryptedExtensions: the callback's
            # `version` already says TLS 1.3 before the ServerHello, when OpenSSL still
            # ignores a warning as TLS 1.2 would (the "warning-alert" lab case).
            tls13 = self.tls13 and name != "user_canceled"
            if data[0] == ALERT_FATAL or name == "close_notify" or tls13:
                self.alert = name
        if content_type != CT_HANDSHAKE:
            return
        if reading and msg_type == HS_ENCRYPTED_EXTENSIONS:
            self.tls13 = True
        elif reading and msg_type == HS_NEW_SESSION_TICKET:
            self.ticket_seen = True
            if self.on_ticket is not None:
                self.on_ticket()
        elif reading and msg_type == HS_CERTIFICATE_REQUEST:
            self.client_cert_requested = True
        elif msg_type == HS_CERTIFICATE:
            certs = parse_certificate_message(data[4:], tls13=version == TLS13)
            if reading:
                self.server_chain = certs
            else:
                self.client_cert_sent = bool(certs)

    @property
    def bare_close(self) -> bool:
        """The server said nothing before ending the connection: no alert (not even
        close_notify) and no session ticket."""
        return self.alert is None and not self.ticket_seen


# --- raw bytes --------------------------------------------------------------------------------


def after_alerts(head: bytes) -> bytes:
    """The bytes after any whole TLS alert records at the start (a warning alert, then the
    real answer): what the server said once it was done alerting."""
    while len(head) >= _RECORD_HEADER and head[0] == CT_ALERT:
        length = int.from_bytes(head[3:5], "big")
        if len(head) < _RECORD_HEADER + length:
            break
        head = head[_RECORD_HEADER + length:]
    return head


def looks_like(data: bytes) -> str:
    """A guess at what a non-TLS answer is, for the one line a person reads."""
    upper = data.lstrip().upper()
    for prefix, what in ((b"HTTP/", "plaintext HTTP"), (b"SIP/2.0", "plaintext SIP"),
                         (b"<?XML", "plaintext XML, perhaps XMPP without TLS"),
                         (b"<STREAM", "plaintext XMPP"), (b"SSH-", "an SSH server"),
                         (b"220 ", "an SMTP or FTP banner"), (b"+OK", "a POP3 banner"),
                         (b"* OK", "an IMAP banner")):
        if upper.startswith(prefix):
            return what
    if data.strip(b"\x00") == b"":
        return "zero bytes"
    text = data.decode("ascii", "replace")
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return "plaintext of an unknown protocol"
    return "binary data of no protocol fedscan knows"


def printable(data: bytes) -> str:
    """Peer bytes for a report: text as text (a banner's first line), anything else as a
    short hex excerpt (``a5 e9 fd 2c ...``), never Python's ``b'\\xa5...'``."""
    text = data.decode("ascii", "replace")
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return repr(text.split("\r\n")[0].split("\n")[0])
    return "hex " + data[:12].hex(" ") + (" ..." if len(data) > 12 else "")


def error_text(text: str) -> str:
    """``[SSL] ASN1 lib`` rather than ``[SSL] ASN1 lib (_ssl.c:1006)``."""
    return text.split(" (_ssl.c:")[0]


# --- what a failure means ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrived:
    """What the transport carried when the connection broke, and OpenSSL's word on it."""

    head: bytes = b""  # the first HEAD_BYTES the server sent since the TLS phase began
    received: int = 0  # how many bytes it sent since then
    reason: str | None = None  # OpenSSL's reason, e.g. WRONG_VERSION_NUMBER
    error: str = ""  # the error's text as Python gave it
    reset: bool = False  # the peer reset the TCP connection
    eof: bool = False  # the peer closed it (OpenSSL's "unexpected EOF")


@dataclass(frozen=True, slots=True)
class HandshakeFailure:
    """The finding a failed handshake gets, and the partner's verdict on our certificate when
    the failure was that verdict (TLS 1.2 judges it inside the handshake)."""

    finding: Finding
    acceptance: Acceptance | None = None


def is_client_cert_alert(name: str | None) -> bool:
    """An alert name (``certificate_required``) or OpenSSL reason (``..._CERTIFICATE_REQUIRED``)
    with which servers refuse a handshake that lacks a client certificate."""
    return name is not None and name.lower().endswith(CLIENT_CERT_ALERTS)


def client_cert_required(alert: str) -> Finding:
    return finding("client-certificate-required",
                   f"the server requires a client certificate (alert {alert})", alert=alert)


def client_cert_dropped(how: str) -> Finding:
    return finding("client-certificate-required",
                   f"the server {how} the connection right after a handshake in which it asked for "
                   "a client certificate and got none (no alert, no session ticket)",
                   alert=None, connection=how)


def handshake_failure(wire: WireLog, arrived: Arrived, *, sni: str, presenting: bool,
                      probing: bool) -> HandshakeFailure:
    """Why the TLS handshake failed. ``presenting``: we had a certificate to send;
    ``probing``: the acceptance probe asked for the partner's verdict on it."""
    alert, reason = wire.alert, arrived.reason
    name = alert_name(alert or reason)
    # Up to TLS 1.2 the server judges our certificate inside the handshake. A rejection alert
    # that came after we sent a certificate is about that certificate; before it (no shared
    # cipher, a protocol version) it is about the server's own configuration.
    if probing and wire.client_cert_sent and name is not None:
        return HandshakeFailure(client_certificate_rejected(name, in_handshake=True, version=None),
                                Acceptance(None, TlsVerdict("rejected", "alert", name)))
    if wire.client_cert_requested and not presenting and is_client_cert_alert(alert or reason):
        return HandshakeFailure(client_cert_required(alert or reason or ""))
    if alert == "unrecognized_name":
        return HandshakeFailure(finding(
            "tls-name-unrecognized",
            f"the server does not recognise the name {sni} (TLS alert unrecognized_name)",
            alert=alert, sni=sni))
    head = arrived.head
    return HandshakeFailure(finding(
        "tls-handshake-failed", f"TLS handshake failed: {describe(alert, arrived)}",
        alert=alert, reason=reason, error=error_text(arrived.error),
        received_bytes=arrived.received, received=printable(head) if head else None))


def describe(alert: str | None, arrived: Arrived) -> str:
    """One phrase for why a TLS handshake failed, from the strongest evidence we have."""
    if alert is not None:
        return f"the server sent the alert {alert}"
    head, count, reason = arrived.head, arrived.received, arrived.reason
    after = after_alerts(head)
    if after and after[0] not in TLS_CONTENT_TYPES:
        lead = "after a TLS alert, " if after != head else ""
        return (f"the server does not speak TLS here: {lead}it sent {printable(after)} "
                f"({looks_like(after)})")
    if arrived.reset:
        return f"the server reset the connection ({count} bytes received)"
    eof = arrived.eof or reason == "UNEXPECTED_EOF_WHILE_READING"
    if eof and count == 0:
        return "the server closed the connection without answering the ClientHello"
    if eof:
        return f"the server closed the connection mid-handshake ({count} bytes received)"
    if reason == "EXCESSIVE_MESSAGE_SIZE":
        return ("a handshake message (usually the certificate chain) exceeds the 100 KiB "
                "a TLS client accepts")
    text = error_text(arrived.error)
    if "ASN1" in (reason or "") or "ASN1" in text:
        return ("what the server sent does not parse (malformed ASN.1: usually a certificate "
                "that is not valid DER)")
    return reason or text


def refusal_after_handshake(wire: WireLog, broke: Arrived | None, *, closed: bool) -> Finding | None:
    """TLS 1.3 servers reject a missing client certificate only after the handshake: what the
    first read after it says. ``broke``: the read failed; else ``closed``: it returned the end
    of the stream. Silence and data are no refusal (a SIP server simply waits for us)."""
    if broke is not None:
        alert = wire.alert or broke.reason
        if is_client_cert_alert(alert):
            return client_cert_required(alert or "")
        return client_cert_dropped("reset") if wire.bare_close and broke.reset else None
    return client_cert_dropped("closed") if closed and wire.bare_close else None


def timeout_failure(phase: str, where: str, received: int) -> Finding:
    """The deadline passed in ``phase`` (``connect``, ``starttls``, ``tls``) with ``received``
    bytes from the server so far."""
    if phase == "connect":
        return finding("connect-timeout", f"no TCP connection to {where} in time")
    return finding("handshake-timeout",
                   f"{where} accepted but did not finish ({phase}) in time "
                   f"({received} bytes received)",
                   phase=phase, received_bytes=received)
