"""scanner.tlswire from byte transcripts alone: no socket, no ssl, no trio.

The transcripts are what the hostile lab's peers really send (tests/test_hostile_tls.py proves
the same findings end to end): the raw first bytes of the TLS phase, the messages and alerts
OpenSSL's message callback hands over, and OpenSSL's reason when it gave one.
"""

from __future__ import annotations

import pytest

from scanner.acceptance_model import Acceptance, TlsVerdict
from scanner.findings import Finding, Severity
from scanner.tlswire import (
    Arrived,
    HandshakeFailure,
    WireLog,
    after_alerts,
    alert_description,
    handshake_failure,
    looks_like,
    parse_certificate_message,
    printable,
    refusal_after_handshake,
    timeout_failure,
)

SNI = "sip.contoso.test"
LEAF, INTERMEDIATE = b"\x30\x03LLL", b"\x30\x02II"
TLS12, TLS13 = 0x0303, 0x0304


def u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def handshake_message(msg_type: int, body: bytes) -> bytes:
    """A handshake message as the callback passes it: 4-byte header included."""
    return bytes([msg_type]) + u24(len(body)) + body


def certificate_body(*certs: bytes, tls13: bool = False) -> bytes:
    if tls13:
        entries = b"".join(u24(len(c)) + c + b"\x00\x00" for c in certs)
        return b"\x00" + u24(len(entries)) + entries
    entries = b"".join(u24(len(c)) + c for c in certs)
    return u24(len(entries)) + entries


def feed(log: WireLog, *messages: tuple[str, int, int, bytes]) -> WireLog:
    """(direction, version, content type, data) as the message callback sees them."""
    for direction, version, content_type, data in messages:
        msg_type = data[0] if content_type == 22 else data[-1]
        log.on_message(None, direction, version, content_type, msg_type, data)
    return log


ENCRYPTED_EXTENSIONS_13 = ("read", TLS13, 22, handshake_message(8, b"\x00\x00"))
CERTIFICATE_REQUEST = ("read", TLS12, 22, handshake_message(13, b"\x01\x01\x00\x00"))
SERVER_CERTIFICATE_12 = ("read", TLS12, 22, handshake_message(11, certificate_body(LEAF, INTERMEDIATE)))
OUR_CERTIFICATE_12 = ("write", TLS12, 22, handshake_message(11, certificate_body(LEAF)))
NEW_SESSION_TICKET = ("read", TLS13, 22, handshake_message(4, b"\x00" * 8))


def alert(level: int, description: int, version: int = TLS12) -> tuple[str, int, int, bytes]:
    return ("read", version, 21, bytes([level, description]))


def failed(log: WireLog, arrived: Arrived, *, presenting: bool = False,
           probing: bool = False) -> Finding:
    result = handshake_failure(log, arrived, sni=SNI, presenting=presenting, probing=probing)
    assert result.acceptance is None
    return result.finding


# --- the Certificate message parser -------------------------------------------------------------------


def test_parse_certificate_message_formats() -> None:
    a, b = b"\x30\x01A", b"\x30\x02BB"
    tls12 = u24(len(a) + len(b) + 6) + u24(len(a)) + a + u24(len(b)) + b
    assert parse_certificate_message(tls12, tls13=False) == (a, b)
    entries = u24(len(a)) + a + b"\x00\x00" + u24(len(b)) + b + b"\x00\x02xx"
    tls13 = b"\x01c" + u24(len(entries)) + entries
    assert parse_certificate_message(tls13, tls13=True) == (a, b)
    assert parse_certificate_message(tls13[:-8], tls13=True) == (a,)
    assert parse_certificate_message(b"", tls13=True) == ()


def test_a_certificate_length_past_the_list_ends_the_parse() -> None:
    body = u24(3 + len(LEAF) + 3 + 500) + u24(len(LEAF)) + LEAF + u24(500) + b"\x30"
    assert parse_certificate_message(body, tls13=False) == (LEAF,)
    assert parse_certificate_message(b"\x00\x00", tls13=False) == ()


# --- the wire log ------------------------------------------------------------------------------------


def test_the_wire_log_records_both_sides_of_a_mutual_tls12_handshake() -> None:
    log = feed(WireLog(), SERVER_CERTIFICATE_12, CERTIFICATE_REQUEST, OUR_CERTIFICATE_12)
    assert log.server_chain == (LEAF, INTERMEDIATE)
    assert log.client_cert_requested and log.client_cert_sent
    assert log.alert is None and not log.tls13


def test_the_wire_log_reads_a_tls13_certificate_and_an_empty_one_of_ours() -> None:
    server = ("read", TLS13, 22, handshake_message(11, certificate_body(LEAF, tls13=True)))
    empty = ("write", TLS13, 22, handshake_message(11, certificate_body(tls13=True)))
    log = feed(WireLog(), ENCRYPTED_EXTENSIONS_13, server, empty)
    assert log.tls13 and log.server_chain == (LEAF,)
    assert log.client_cert_sent is False  # an empty Certificate is "no certificate"


def test_a_session_ticket_is_seen_and_announced() -> None:
    calls: list[bool] = []
    log = WireLog(on_ticket=lambda: calls.append(True))
    feed(log, ENCRYPTED_EXTENSIONS_13, NEW_SESSION_TICKET)
    assert log.ticket_seen and calls == [True]
    assert not log.bare_close


def test_records_of_other_types_change_nothing() -> None:
    log = feed(WireLog(), ("read", TLS12, 20, b"\x01"), ("read", TLS12, 23, b"\x0b\x00"))
    assert log == WireLog()


ENCRYPTED_EXTENSIONS = (22, 8, b"\x08\x00\x00\x00")  # content type, message type, message


@pytest.mark.parametrize(("negotiated_13", "level_and_alert", "recorded"), [
    (False, b"\x01\x70", None),  # TLS 1.2 (or before the ServerHello): a warning is not the end
    (False, b"\x02\x70", "unrecognized_name"),
    (False, b"\x01\x00", "close_notify"),
    (True, b"\x01\x28", "handshake_failure"),  # TLS 1.3 ignores the level
    (True, b"\x01\x5a", None),  # ... except for user_canceled
])
def test_which_alerts_the_wire_log_keeps(negotiated_13: bool, level_and_alert: bytes,
                                         recorded: str | None) -> None:
    log = WireLog()
    if negotiated_13:
        content, kind, body = ENCRYPTED_EXTENSIONS
        log.on_message(None, "read", 0x0304, content, kind, body)
    log.on_message(None, "read", 0x0304, 21, level_and_alert[1], level_and_alert)
    assert log.alert == recorded


def test_alert_names() -> None:
    assert alert_description(48) == "unknown_ca"
    assert alert_description(116) == "certificate_required"
    assert alert_description(200) == "alert-200"
    assert feed(WireLog(), alert(2, 200)).alert == "alert-200"
    assert feed(WireLog(), ("read", TLS12, 21, b"\x02")).alert is None  # truncated: no alert


# --- what arrived instead of a ServerHello ----------------------------------------------------------

WRONG_VERSION = ("WRONG_VERSION_NUMBER", "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
GARBAGE = bytes.fromhex("a5e9fd2cfe44591d542b8455") + bytes(range(36))


def test_garbage_is_shown_as_hex_with_a_guess() -> None:
    f = failed(WireLog(), Arrived(GARBAGE, 256, *WRONG_VERSION))
    assert f.code == "tls-handshake-failed" and f.severity == Severity.CRITICAL
    assert f.message == ("TLS handshake failed: the server does not speak TLS here: it sent hex "
                         "a5 e9 fd 2c fe 44 59 1d 54 2b 84 55 ... "
                         "(binary data of no protocol fedscan knows)")
    assert dict(f.details) == {"alert": None, "reason": "WRONG_VERSION_NUMBER",
                               "error": "[SSL: WRONG_VERSION_NUMBER] wrong version number",
                               "received_bytes": 256,
                               "received": "hex a5 e9 fd 2c fe 44 59 1d 54 2b 84 55 ..."}


@pytest.mark.parametrize(("head", "banner", "what"), [
    (b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "'SIP/2.0 400 Bad Request'", "plaintext SIP"),
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "'HTTP/1.1 400 Bad Request'", "plaintext HTTP"),
    (b"<?xml version='1.0'?><stream:stream>", "\"<?xml version='1.0'?><stream:stream>\"",
     "plaintext XML, perhaps XMPP without TLS"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "'SSH-2.0-OpenSSH_9.2'", "an SSH server"),
    (b"220 mail.contoso.test ESMTP\r\n", "'220 mail.contoso.test ESMTP'", "an SMTP or FTP banner"),
    (b"hello?\n", "'hello?'", "plaintext of an unknown protocol"),
])
def test_plaintext_on_the_tls_port(head: bytes, banner: str, what: str) -> None:
    f = failed(WireLog(), Arrived(head, len(head), *WRONG_VERSION))
    assert f.message == f"TLS handshake failed: the server does not speak TLS here: it sent {banner} ({what})"
    assert f.details["received"] == banner


def test_zero_bytes() -> None:
    f = failed(WireLog(), Arrived(bytes(48), 64, *WRONG_VERSION))
    assert f.details["received"] == "hex " + "00 " * 11 + "00 ..."
    assert f.message.endswith("(zero bytes)")


def test_a_warning_alert_then_garbage_blames_the_garbage() -> None:
    warning = bytes.fromhex("15030300020170")  # unrecognized_name, level warning
    log = feed(WireLog(), alert(1, 112))
    f = failed(log, Arrived(warning + bytes(16), 23, *WRONG_VERSION))
    assert f.details["alert"] is None
    assert f.message == ("TLS handshake failed: the server does not speak TLS here: after a TLS "
                         "alert, it sent hex 00 00 00 00 00 00 00 00 00 00 00 00 ... (zero bytes)")
    assert f.details["received"] == "hex 15 03 03 00 02 01 70 00 00 00 00 00 ..."


def test_after_alerts_skips_whole_alert_records_only() -> None:
    record = bytes.fromhex("15030300020170")
    assert after_alerts(record + b"SIP") == b"SIP"
    assert after_alerts(record + record) == b""
    assert after_alerts(record[:6]) == record[:6]  # a truncated alert is not skipped
    assert after_alerts(bytes.fromhex("160303")) == bytes.fromhex("160303")


# --- what the TLS layer said ---------------------------------------------------------------------------


def test_a_fatal_alert_is_the_reason() -> None:
    log = feed(WireLog(), alert(2, 40))
    f = failed(log, Arrived(bytes.fromhex("15030300020228"), 7, "SSLV3_ALERT_HANDSHAKE_FAILURE",
                            "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure"))
    assert f.message == "TLS handshake failed: the server sent the alert handshake_failure"
    assert f.details["alert"] == "handshake_failure"
    assert f.details["received"] == "hex 15 03 03 00 02 02 28"


def test_unrecognized_name_names_the_name_we_asked_for() -> None:
    f = failed(feed(WireLog(), alert(2, 112)), Arrived(reason="TLSV1_UNRECOGNIZED_NAME"))
    assert f.code == "tls-name-unrecognized" and f.severity == Severity.CRITICAL
    assert dict(f.details) == {"alert": "unrecognized_name", "sni": SNI}
    assert f.message == f"the server does not recognise the name {SNI} (TLS alert unrecognized_name)"


def test_a_reset_says_how_far_the_server_got() -> None:
    f = failed(WireLog(), Arrived(bytes.fromhex("16030300310200"), 7, None,
                                  "[Errno 104] Connection reset by peer", reset=True))
    assert f.message == "TLS handshake failed: the server reset the connection (7 bytes received)"
    assert f.details["received"] == "hex 16 03 03 00 31 02 00"


@pytest.mark.parametrize(("arrived", "message"), [
    (Arrived(b"", 0, "UNEXPECTED_EOF_WHILE_READING",
             "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol"),
     "the server closed the connection without answering the ClientHello"),
    (Arrived(b"", 0, None, "EOF occurred in violation of protocol", eof=True),
     "the server closed the connection without answering the ClientHello"),
    (Arrived(bytes.fromhex("1603030031"), 90, None, "", eof=True),
     "the server closed the connection mid-handshake (90 bytes received)"),
])
def test_a_close(arrived: Arrived, message: str) -> None:
    f = failed(WireLog(), arrived)
    assert f.message == f"TLS handshake failed: {message}"
    assert f.details["received_bytes"] == arrived.received
    assert f.details["received"] == (None if not arrived.head else "hex 16 03 03 00 31")


def test_a_message_over_the_client_limit() -> None:
    f = failed(WireLog(), Arrived(bytes.fromhex("160303007a"), 65536, "EXCESSIVE_MESSAGE_SIZE",
                                  "[SSL: EXCESSIVE_MESSAGE_SIZE] excessive message size"))
    assert f.message == ("TLS handshake failed: a handshake message (usually the certificate chain) "
                         "exceeds the 100 KiB a TLS client accepts")
    assert f.details["reason"] == "EXCESSIVE_MESSAGE_SIZE"


def test_broken_der_in_the_certificate() -> None:
    log = feed(WireLog(), ("read", TLS12, 22, handshake_message(11, certificate_body(b"\x30\x80bad"))))
    f = failed(log, Arrived(bytes.fromhex("1603030031"), 3270, None, "[SSL] ASN1 lib (_ssl.c:1006)"))
    assert log.server_chain == (b"\x30\x80bad",)  # captured for the verifier to judge
    assert f.message == ("TLS handshake failed: what the server sent does not parse (malformed "
                         "ASN.1: usually a certificate that is not valid DER)")
    assert f.details["error"] == "[SSL] ASN1 lib"


def test_otherwise_openssl_has_the_last_word() -> None:
    tls = bytes.fromhex("1603030031")
    assert failed(WireLog(), Arrived(tls, 5, "UNSUPPORTED_PROTOCOL", "x")).message == (
        "TLS handshake failed: UNSUPPORTED_PROTOCOL")
    assert failed(WireLog(), Arrived(tls, 5, None, "SSLError")).message == "TLS handshake failed: SSLError"
    assert failed(WireLog(), Arrived(tls, 5, None, "odd (_ssl.c:1)")).message == (
        "TLS handshake failed: odd")


# --- our certificate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("log", "reason", "alert"), [
    (feed(WireLog(), CERTIFICATE_REQUEST, alert(2, 116)), None, "certificate_required"),
    (feed(WireLog(), CERTIFICATE_REQUEST, alert(2, 40)), None, "handshake_failure"),
    (feed(WireLog(), CERTIFICATE_REQUEST), "TLSV13_ALERT_CERTIFICATE_REQUIRED",
     "TLSV13_ALERT_CERTIFICATE_REQUIRED"),
])
def test_a_server_that_demands_a_client_certificate(log: WireLog, reason: str | None, alert: str) -> None:
    f = failed(log, Arrived(reason=reason))
    assert f.code == "client-certificate-required" and f.severity == Severity.WARNING
    assert f.message == f"the server requires a client certificate (alert {alert})"
    assert dict(f.details) == {"alert": alert}


def test_a_demand_we_met_is_not_read_as_one() -> None:
    log = feed(WireLog(), CERTIFICATE_REQUEST, alert(2, 40))
    assert failed(log, Arrived(), presenting=True).code == "tls-handshake-failed"
    assert failed(feed(WireLog(), alert(2, 116)), Arrived()).code == "tls-handshake-failed"


def test_tls12_refusal_of_the_certificate_we_presented() -> None:
    log = feed(WireLog(), CERTIFICATE_REQUEST, OUR_CERTIFICATE_12, alert(2, 48))
    result = handshake_failure(log, Arrived(reason="TLSV1_ALERT_UNKNOWN_CA"), sni=SNI,
                               presenting=True, probing=True)
    assert result.acceptance == Acceptance(None, TlsVerdict("rejected", "alert", "unknown_ca"))
    assert result.finding.code == "client-certificate-rejected"
    assert result.finding.message.startswith(
        "the partner rejected our certificate with the TLS alert unknown_ca: ")
    assert result.finding.details["phase"] == "handshake"
    # without the acceptance probe the same alert is an ordinary failed handshake
    plain = handshake_failure(log, Arrived(), sni=SNI, presenting=True, probing=False)
    assert plain == HandshakeFailure(plain.finding) and plain.finding.code == "tls-handshake-failed"


def test_an_alert_before_we_sent_a_certificate_is_about_the_server() -> None:
    log = feed(WireLog(), alert(2, 40))  # no shared cipher: before our Certificate
    result = handshake_failure(log, Arrived(), sni=SNI, presenting=True, probing=True)
    assert result.acceptance is None and result.finding.code == "tls-handshake-failed"


# --- after a TLS 1.3 handshake that asked for a certificate we did not send ---------------------------

TLS13_REQUEST = (ENCRYPTED_EXTENSIONS_13, ("read", TLS13, 22, handshake_message(13, b"\x00\x00\x00")))


def test_the_certificate_required_alert_after_the_handshake() -> None:
    log = feed(WireLog(), *TLS13_REQUEST, alert(2, 116, TLS13))
    f = refusal_after_handshake(log, Arrived(reason="TLSV13_ALERT_CERTIFICATE_REQUIRED"), closed=False)
    assert f is not None and f.code == "client-certificate-required"
    assert f.message == "the server requires a client certificate (alert certificate_required)"
    by_reason = refusal_after_handshake(feed(WireLog(), *TLS13_REQUEST),
                                        Arrived(reason="TLSV13_ALERT_CERTIFICATE_REQUIRED"), closed=False)
    assert by_reason is not None and by_reason.details["alert"] == "TLSV13_ALERT_CERTIFICATE_REQUIRED"


@pytest.mark.parametrize(("broke", "closed", "how"), [
    (Arrived(reset=True, error="[Errno 104] Connection reset by peer"), False, "reset"),
    (None, True, "closed"),
])
def test_a_server_that_just_hangs_up(broke: Arrived | None, closed: bool, how: str) -> None:
    f = refusal_after_handshake(feed(WireLog(), *TLS13_REQUEST), broke, closed=closed)
    assert f is not None and f.code == "client-certificate-required"
    assert dict(f.details) == {"alert": None, "connection": how}
    assert f.message == (f"the server {how} the connection right after a handshake in which it "
                         "asked for a client certificate and got none (no alert, no session ticket)")


@pytest.mark.parametrize(("messages", "broke", "closed"), [
    ((NEW_SESSION_TICKET,), Arrived(reset=True), False),  # accepted first: the reset is not a verdict
    ((NEW_SESSION_TICKET,), None, True),
    ((alert(1, 0, TLS13),), None, True),  # close_notify: said something
    ((), Arrived(reason="DECRYPTION_FAILED"), False),  # another TLS error is not read as that
    ((), None, False),  # data, or silence: a SIP server waits for us
])
def test_no_refusal(messages: tuple[tuple[str, int, int, bytes], ...], broke: Arrived | None,
                    closed: bool) -> None:
    log = feed(WireLog(), *TLS13_REQUEST, *messages)
    assert refusal_after_handshake(log, broke, closed=closed) is None


# --- nothing arrived in time ---------------------------------------------------------------------------


def test_timeouts_name_the_phase_and_what_came() -> None:
    connect = timeout_failure("connect", "192.0.2.1:5061", 0)
    assert connect.code == "connect-timeout"
    assert connect.message == "no TCP connection to 192.0.2.1:5061 in time"
    silent = timeout_failure("tls", "192.0.2.1:5061", 0)
    assert silent.code == "handshake-timeout"
    assert dict(silent.details) == {"phase": "tls", "received_bytes": 0}
    assert silent.message == "192.0.2.1:5061 accepted but did not finish (tls) in time (0 bytes received)"
    stalled = timeout_failure("starttls", "[2001:db8::1]:5269", 187)
    assert stalled.message == ("[2001:db8::1]:5269 accepted but did not finish (starttls) in time "
                               "(187 bytes received)")


def test_printable_and_looks_like() -> None:
    assert printable(b"+OK POP3 ready\r\nmore") == "'+OK POP3 ready'"
    assert looks_like(b"+OK POP3 ready") == "a POP3 banner"
    assert looks_like(b"* OK IMAP4rev1") == "an IMAP banner"
    assert looks_like(b"  <stream:stream") == "plaintext XMPP"
    assert printable(bytes(range(5))) == "hex 00 01 02 03 04"
