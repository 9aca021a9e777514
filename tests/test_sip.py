"""The sans-I/O SIP reader: exact messages, hostile input, chunking independence."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.sip import (
    NEED_DATA,
    Closed,
    Event,
    NeedData,
    RemoteProtocolError,
    Request,
    Response,
    SipReader,
    options_request,
    parse_ms_diagnostics,
    response_bytes,
    uri_host,
)

TRYING = b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKa\r\nContent-Length: 0\r\n\r\n"
FORBIDDEN = (
    b"SIP/2.0 403 Forbidden\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKa\r\n"
    b"From: <sip:contoso.test>;tag=1\r\n"
    b"To: <sip:sip.partner.test>;tag=2\r\n"
    b"Call-ID: abc\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b'ms-diagnostics: 1034;reason="Previous hop federated peer did not report diagnostic '
    b'information";Domain="contoso.test";source="sip.partner.test"\r\n'
    b"Content-Length: 5\r\n"
    b"\r\n"
    b"hello"
)
TRANSCRIPT = b"\r\n\r\n" + TRYING + FORBIDDEN


def read_all(chunks: list[bytes], reader: SipReader | None = None) -> list[Event]:
    r = reader or SipReader()
    out: list[Event] = []
    for chunk in [*chunks, b""]:
        r.receive_data(chunk)
        while True:
            event = r.next_event()
            if isinstance(event, NeedData):
                break
            out.append(event)
            if isinstance(event, Closed):
                return out
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def error_of(data: bytes, reader: SipReader | None = None) -> str:
    with pytest.raises(RemoteProtocolError) as info:
        read_all([data], reader)
    return str(info.value)


def test_responses_skip_keepalives_and_keep_headers_in_order() -> None:
    events = read_all([TRANSCRIPT])
    assert [type(e) for e in events] == [Response, Response, Closed]
    trying, forbidden = events[0], events[1]
    assert isinstance(trying, Response) and isinstance(forbidden, Response)
    assert (trying.status, trying.reason, trying.final) == (100, "Trying", False)
    assert (forbidden.status, forbidden.reason, forbidden.final) == (403, "Forbidden", True)
    assert forbidden.header("CALL-ID") == "abc"
    assert forbidden.header("i") == "abc"  # compact form
    assert forbidden.body == b"hello"
    assert [n for n, _ in forbidden.headers][:2] == ["via", "from"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TRANSCRIPT)), max_size=12))
def test_events_do_not_depend_on_chunking(cuts: list[int]) -> None:
    assert read_all(split(TRANSCRIPT, cuts)) == read_all([TRANSCRIPT])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_end_in_messages_or_one_protocol_error(data: bytes) -> None:
    try:
        events = read_all([data])
    except RemoteProtocolError as exc:
        assert str(exc)
    else:
        assert isinstance(events[-1], Closed)


def test_nothing_is_returned_before_the_message_is_complete() -> None:
    reader = SipReader()
    reader.receive_data(FORBIDDEN[:-1])
    assert reader.next_event() is NEED_DATA
    reader.receive_data(FORBIDDEN[-1:])
    event = reader.next_event()
    assert isinstance(event, Response) and event.body == b"hello"


def test_request_with_folded_header_bare_lf_and_compact_length() -> None:
    data = b"OPTIONS sip:a.test SIP/2.0\nFrom: <sip:contoso.test>\n ;tag=9\nl: 0\n\n"
    (event, closed) = read_all([data])
    assert isinstance(event, Request) and isinstance(closed, Closed)
    assert (event.method, event.uri) == ("OPTIONS", "sip:a.test")
    assert event.header("from") == "<sip:contoso.test> ;tag=9"
    assert event.header("content-length") == "0"


@pytest.mark.parametrize(("data", "message"), [
    (b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", "without Content-Length"),
    (b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting Content-Length"),
    (b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
    (b"SIP/2.0 200 OK\r\nContent-Length: 70000\r\n\r\n", "exceeds the 65536-byte limit"),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "not SIP: unexpected start line"),
    (b"SIP/2.0 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n", "malformed header line"),
    (b"SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nab", "connection closed after 2 of 4 body bytes"),
    (b"SIP/2.0 200 OK\r\nVia: x", "connection closed inside a message"),
    (b"\xff\xfe\r\n\r\n", "not UTF-8"),
])
def test_peer_faults_are_one_protocol_error(data: bytes, message: str) -> None:
    assert message in error_of(data)


def test_headers_are_bounded_even_without_an_end() -> None:
    reader = SipReader(max_head=100)
    with pytest.raises(RemoteProtocolError, match="more than 100 bytes"):
        reader.receive_data(b"SIP/2.0 200 OK\r\n" + b"X-A: " + b"a" * 200)
    with pytest.raises(RemoteProtocolError):  # and it stays broken
        reader.next_event()


def test_ms_diagnostics_code_reason_source() -> None:
    diag = parse_ms_diagnostics('1034;reason="Previous hop \\"federated\\" peer";Domain="c.test";'
                                'source="sip.partner.test"')
    assert (diag.code, diag.reason, diag.source) == (1034, 'Previous hop "federated" peer',
                                                     "sip.partner.test")
    assert parse_ms_diagnostics("garbage").to_json() == {"code": None, "reason": None, "source": None}


@pytest.mark.parametrize(("value", "host"), [
    ('"Contoso" <sip:alice@Contoso.Test>;tag=1', "contoso.test"),
    ("<sip:contoso.test;transport=tls>", "contoso.test"),
    ("sips:bob@[::1]:5061", "[::1]"),
    ("<tel:+1555>", None),
])
def test_uri_host(value: str, host: str | None) -> None:
    assert uri_host(value) == host


def test_options_request_round_trips_through_the_reader_and_a_response() -> None:
    req = options_request(target="sip.partner.test", from_domain="contoso.test", local_host="::1",
                          local_port=40000, call_id="c1", tag="t1", branch="b1", user_agent="fedscan/1")
    (request, _) = read_all([req.data])
    assert isinstance(request, Request) and request.method == "OPTIONS"
    assert request.header("via") == "SIP/2.0/TLS [::1]:40000;branch=z9hG4bKb1"
    for name, value in [("Max-Forwards", "70"), ("From", "<sip:contoso.test>;tag=t1"),
                        ("To", "<sip:sip.partner.test>"), ("Call-ID", "c1"),
                        ("CSeq", "1 OPTIONS"), ("Content-Length", "0")]:
        assert request.header(name) == value
    (response, _) = read_all([response_bytes(request, 403, "Forbidden", tag="s1",
                                             extra=(("ms-diagnostics", '1;reason="x"'),))])
    assert isinstance(response, Response)
    assert (response.status, response.header("to"), response.header("cseq")) == (
        403, "<sip:sip.partner.test>;tag=s1", "1 OPTIONS")
    assert response.header("ms-diagnostics") == '1;reason="x"'
