"""The pure half of an acceptance scan: wording and judging each level's observation, and the
sans-I/O XMPP SASL EXTERNAL negotiation (both sides), chunking-independent."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from scanner.direct import parse_endpoint
from scanner.findings import Severity
from scanner.xmpp import (
    AuthRequested,
    Event,
    Features,
    LocalProtocolError,
    NeedData,
    RemoteProtocolError,
    SaslFailure,
    SaslSuccess,
    StreamOpened,
    stream_header,
)
from scanner.xmpp_auth import AUTH_EXTERNAL_BYTES, SUCCESS_BYTES, XmppAuthNegotiator, XmppAuthServer


@pytest.mark.parametrize(("text", "name"), [
    ("unknown_ca", "unknown_ca"),
    ("TLSV1_ALERT_UNKNOWN_CA", "unknown_ca"),
    ("SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "unsupported_certificate"),
    ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "certificate_required"),
    ("SSLV3_ALERT_HANDSHAKE_FAILURE", "handshake_failure"),
    ("close_notify", None),
    ("UNEXPECTED_EOF_WHILE_READING", None),
    (None, None),
])
def test_alert_names_from_alerts_and_openssl_reasons(text: str | None, name: str | None) -> None:
    assert alert_name(text) == name


def test_rejection_finding_names_alert_and_meaning() -> None:
    f = client_certificate_rejected("unsupported_certificate", in_handshake=True, version="TLSv1.2")
    assert f.code == "client-certificate-rejected" and f.severity is Severity.CRITICAL
    assert "Client Authentication EKU" in f.message
    assert dict(f.details) == {"alert": "unsupported_certificate", "meaning": f.details["meaning"],
                               "phase": "handshake", "tls_version": "TLSv1.2"}


@pytest.mark.parametrize(("status", "severity"), [
    (403, Severity.CRITICAL), (401, Severity.WARNING), (407, Severity.WARNING),
    (480, Severity.WARNING), (503, Severity.WARNING), (500, Severity.WARNING),
])
def test_sip_refusals(status: int, severity: Severity) -> None:
    (f,) = sip_findings(SipVerdict("contoso.com", status, "Nope"), "sip.partner.com")
    assert (f.code, f.severity, f.details["status"]) == ("sip-options-refused", severity, status)


@pytest.mark.parametrize("status", [200, 202, 404, 405, 486])
def test_sip_answers_that_are_not_refusals_of_us(status: int) -> None:
    # 404/405/486 say the request-URI or method is not served there, not "we refuse you"
    assert sip_findings(SipVerdict("contoso.com", status, "x"), "sip.partner.com") == []


def test_sip_no_answer_is_a_warning() -> None:
    (f,) = sip_findings(SipVerdict("contoso.com", None, provisional=(100,), error="deadline reached"),
                        "sip.partner.com")
    assert (f.code, f.severity) == ("sip-no-response", Severity.WARNING)
    assert f.details["provisional"] == [100]


@pytest.mark.parametrize(("xmpp", "severity"), [
    (XmppVerdict("c.com", False, True, None), Severity.WARNING),
    (XmppVerdict("c.com", False, False, None), Severity.CRITICAL),
    (XmppVerdict("c.com", True, True, "failure", "not-authorized"), Severity.WARNING),
    (XmppVerdict("c.com", None, None, None, "not-authorized", "Your server's certificate has expired"),
     Severity.CRITICAL),
])
def test_xmpp_refusals(xmpp: XmppVerdict, severity: Severity) -> None:
    (f,) = xmpp_findings(xmpp, "partner.com")
    assert (f.code, f.severity) == ("xmpp-cert-auth-refused", severity)


def test_xmpp_success_and_silence_are_not_refusals() -> None:
    assert xmpp_findings(XmppVerdict("c.com", True, False, "success"), "p.com") == []
    assert xmpp_findings(XmppVerdict("c.com", None, None, None, error="closed"), "p.com") == []


def test_overall_verdict() -> None:
    ok = TlsVerdict("accepted", "session-ticket")
    assert Acceptance(None, None).verdict == "not-reached"
    assert Acceptance(None, ok).verdict == "accepted"
    assert Acceptance(None, ok, sip=SipVerdict("c", 200, "OK")).verdict == "accepted"
    assert Acceptance(None, ok, sip=SipVerdict("c", None)).verdict == "unknown"
    assert Acceptance(None, ok, sip=SipVerdict("c", 403, "Forbidden")).verdict == "refused"
    assert Acceptance(None, TlsVerdict("rejected", "alert", "unknown_ca")).verdict == "refused"
    assert Acceptance(None, TlsVerdict("unknown", "silence")).verdict == "unknown"


def test_table_line() -> None:
    line = Acceptance(None, TlsVerdict("accepted", "session-ticket"),
                      xmpp=XmppVerdict("contoso.com", True, True, "success")).line()
    assert line == ("partner's verdict on our certificate: ACCEPTED; TLS accepted (session-ticket); "
                    "SASL EXTERNAL as contoso.com: success, dialback offered")


# --- SASL EXTERNAL, sans-I/O ------------------------------------------------------------------------

HEADER = stream_header(from_domain="partner.com", stream_id="s2")
FEATURES = XmppAuthServer.features(external=True, dialback=True)
TRANSCRIPT = HEADER + FEATURES + SUCCESS_BYTES


def drive(chunks: list[bytes]) -> list[Event]:
    n = XmppAuthNegotiator("partner.com", "contoso.com")
    n.initiate()
    out: list[Event] = []
    for chunk in [*chunks, b""]:
        n.receive_data(chunk)
        while not isinstance(event := n.next_event(), NeedData):
            out.append(event)
            if isinstance(event, Features) and "EXTERNAL" in event.mechanisms:
                assert n.auth_external() == AUTH_EXTERNAL_BYTES
            if isinstance(event, SaslSuccess | SaslFailure):
                return out
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_external_offered_then_success() -> None:
    opened, features, success = drive([TRANSCRIPT])
    assert opened == StreamOpened("s2", "partner.com", "1.0")
    assert isinstance(features, Features) and features.mechanisms == ("EXTERNAL",)
    assert "{urn:xmpp:features:dialback}dialback" in features.names
    assert success == SaslSuccess()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TRANSCRIPT)), max_size=10))
def test_sasl_events_do_not_depend_on_chunking(cuts: list[int]) -> None:
    assert drive(split(TRANSCRIPT, cuts)) == drive([TRANSCRIPT])


def test_failure_condition_and_text() -> None:
    events = drive([HEADER + FEATURES + XmppAuthServer.failure("not-authorized", "no <cover>")])
    assert events[-1] == SaslFailure("not-authorized", "no <cover>")


def test_unsolicited_success_is_a_protocol_error() -> None:
    n = XmppAuthNegotiator("partner.com", "contoso.com")
    n.initiate()
    n.receive_data(HEADER + XmppAuthServer.features(external=False, dialback=True) + SUCCESS_BYTES)
    assert isinstance(n.next_event(), StreamOpened)
    assert isinstance(n.next_event(), Features)
    with pytest.raises(RemoteProtocolError, match="unsolicited SASL outcome"):
        n.next_event()


def test_auth_before_external_is_offered_is_our_mistake() -> None:
    with pytest.raises(LocalProtocolError):
        XmppAuthNegotiator("partner.com", "contoso.com").auth_external()


def test_server_side_reads_the_auth_request() -> None:
    server = XmppAuthServer()
    server.receive_data(stream_header(to_domain="partner.com", from_domain="contoso.com")
                        + AUTH_EXTERNAL_BYTES)
    opened = server.next_event()
    assert isinstance(opened, StreamOpened) and opened.from_domain == "contoso.com"
    assert server.next_event() == AuthRequested("EXTERNAL", "=")


# --- --endpoint parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "sni", "host", "port", "name"), [
    ("sip-federation=sip.Contoso.com:5061", None, "sip.contoso.com", 5061, "sip.contoso.com"),
    ("xmpp-server=[2001:db8::1]:5269", "contoso.com", "2001:db8::1", 5269, "contoso.com"),
    ("sip-federation=192.0.2.10:5061", "sip.contoso.com", "192.0.2.10", 5061, "sip.contoso.com"),
])
def test_parse_endpoint(text: str, sni: str | None, host: str, port: int, name: str) -> None:
    e = parse_endpoint(text, sni)
    assert (e.host, e.port, e.name) == (host, port, name)


def test_a_non_refusing_answer_is_accepted() -> None:
    assert SipVerdict("c", 404, "Not Found").verdict == "accepted"
    assert SipVerdict("c", 403, "Forbidden").verdict == "refused"
    assert SipVerdict("c", 503, "Service Unavailable").verdict == "refused"
