"""The sans-I/O XMPP negotiator: exact events, hostile input, chunking independence."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.xmpp import (
    DEFAULT_SERVER_FEATURES,
    NEED_DATA,
    PROCEED_BYTES,
    Event,
    Features,
    LocalProtocolError,
    NeedData,
    Proceed,
    RemoteProtocolError,
    StartTlsFailure,
    StartTlsRequested,
    StreamClosed,
    StreamError,
    StreamOpened,
    XmppNegotiator,
    XmppServerNegotiator,
    stream_error_bytes,
    stream_header,
)

HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
          b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
          b"id='s1' from='example.org' version='1.0'>")
FEATURES = (b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
            b"</starttls><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>")
TRANSCRIPT = HEADER + FEATURES + PROCEED_BYTES
EXPECTED: list[Event] = [
    StreamOpened("s1", "example.org", "1.0"),
    Features(True, True, ("{urn:ietf:params:xml:ns:xmpp-tls}starttls",
                          "{urn:xmpp:features:dialback}dialback")),
    Proceed(),
]


def drive(chunks: list[bytes], negotiator: XmppNegotiator | None = None) -> list[Event]:
    """Feed chunks like a client would, answering features with start_tls()."""
    n = negotiator or XmppNegotiator("example.org", "scanner.test")
    n.initiate()
    events: list[Event] = []
    for chunk in [*chunks, b""]:
        n.receive_data(chunk)
        while True:
            event = n.next_event()
            if isinstance(event, NeedData):
                break
            events.append(event)
            if isinstance(event, Features) and event.starttls:
                n.start_tls()
            if isinstance(event, Proceed | StreamClosed):
                return events
    return events


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def error_of(chunks: list[bytes]) -> str:
    with pytest.raises(RemoteProtocolError) as info:
        drive(chunks)
    return str(info.value)


# --- the happy path --------------------------------------------------------------------------------


def test_initiate_header_is_escaped_and_complete() -> None:
    n = XmppNegotiator("ex'ample.org", "me&you.test")
    assert n.initiate() == (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
        b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
        b"to='ex&apos;ample.org' from='me&amp;you.test' version='1.0'>")
    with pytest.raises(LocalProtocolError):
        n.initiate()


def test_valid_transcript_exact_events() -> None:
    assert drive([TRANSCRIPT]) == EXPECTED


def test_start_tls_only_after_offer() -> None:
    n = XmppNegotiator("example.org")
    with pytest.raises(LocalProtocolError):
        n.start_tls()
    n.receive_data(HEADER + FEATURES)
    assert isinstance(n.next_event(), StreamOpened)
    assert isinstance(n.next_event(), Features)
    assert n.start_tls() == b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    with pytest.raises(LocalProtocolError):
        n.start_tls()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TRANSCRIPT)), max_size=40))
def test_any_chunking_same_events(cuts: list[int]) -> None:
    assert drive(split(TRANSCRIPT, cuts)) == EXPECTED


def test_one_byte_chunks() -> None:
    assert drive([TRANSCRIPT[i : i + 1] for i in range(len(TRANSCRIPT))]) == EXPECTED


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=20))
def test_arbitrary_bytes_only_remote_errors(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(RemoteProtocolError):
        drive(split(data, cuts))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=400), max_size=20))
def test_arbitrary_bytes_after_valid_header_only_remote_errors(tail: bytes,
                                                                cuts: list[int]) -> None:
    with contextlib.suppress(RemoteProtocolError):
        drive(split(HEADER + tail, cuts))


# --- negotiation outcomes -------------------------------------------------------------------------


def test_features_without_starttls() -> None:
    data = HEADER + b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>" \
        b"</stream:features>"
    events = drive([data])
    assert events[1:] == [Features(False, False, ("{urn:xmpp:features:dialback}dialback",)),
                          StreamClosed()]


def test_starttls_optional() -> None:
    data = HEADER + b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" \
        b"</stream:features>"
    assert drive([data])[1] == Features(True, False, ("{urn:ietf:params:xml:ns:xmpp-tls}starttls",))


def test_failure() -> None:
    data = HEADER + FEATURES + b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    assert drive([data])[2:] == [StartTlsFailure(), StreamClosed()]


def test_stream_error_host_unknown_with_text() -> None:
    data = HEADER + stream_error_bytes("host-unknown", "no such <domain>") + b"</stream:stream>"
    assert drive([data])[1:] == [StreamError("host-unknown", "no such <domain>"), StreamClosed()]


def test_stream_error_without_text() -> None:
    data = HEADER + b"<stream:error><policy-violation " \
        b"xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    assert drive([data])[1:] == [StreamError("policy-violation", None), StreamClosed()]


def test_eof_before_proceed_is_stream_closed() -> None:
    assert drive([HEADER]) == [EXPECTED[0], StreamClosed()]


def test_features_twice() -> None:
    assert "twice" in error_of([HEADER + FEATURES + FEATURES])


def test_unsolicited_proceed() -> None:
    n = XmppNegotiator("example.org")
    n.receive_data(HEADER + PROCEED_BYTES)
    assert isinstance(n.next_event(), StreamOpened)
    with pytest.raises(RemoteProtocolError, match="unsolicited"):
        n.next_event()


# --- hostile input ----------------------------------------------------------------------------------


BILLION_LAUGHS = (b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                  b"<!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>"
                  b"<stream:stream xmlns='jabber:server' "
                  b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>&lol2;")


def test_doctype_billion_laughs() -> None:
    assert "DOCTYPE" in error_of([BILLION_LAUGHS])


def test_external_entity() -> None:
    data = (b"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
            + HEADER[21:] + b"&x;")
    assert "DOCTYPE" in error_of([data])


def test_undefined_entity_reference() -> None:
    assert "undefined entity" in error_of([HEADER + b"<stream:features>&x;"])


def test_predefined_entities_are_fine() -> None:
    data = HEADER + stream_error_bytes("host-unknown", "a&b 'c' <d>")
    assert drive([data])[1] == StreamError("host-unknown", "a&b 'c' <d>")


def test_comment_and_processing_instruction_refused() -> None:
    assert "comments" in error_of([HEADER + b"<!-- hi -->"])
    assert "processing instructions" in error_of([HEADER + b"<?php x?>"])


def test_oversized_features() -> None:
    big = HEADER + b"<stream:features>" + b"<x xmlns='y'/>" * 5000
    assert "more than 65536 bytes" in error_of([big])


def test_oversized_small_cap_in_drips() -> None:
    n = XmppNegotiator("example.org", max_size=len(HEADER) + 10)
    with pytest.raises(RemoteProtocolError, match="more than"):
        drive([HEADER] + [b" "] * 11, n)


def test_bytes_after_proceed_same_chunk() -> None:
    assert "plaintext injection" in error_of([TRANSCRIPT + b"<iq/>"])


def test_bytes_after_proceed_later_chunk() -> None:
    n = XmppNegotiator("example.org")
    assert drive([TRANSCRIPT], n) == EXPECTED
    with pytest.raises(RemoteProtocolError, match="plaintext injection"):
        n.receive_data(b"\x16")


def test_non_empty_proceed_then_bytes() -> None:
    data = HEADER + FEATURES + b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls' a='>'>" \
        b"</proceed >"
    assert drive([data]) == EXPECTED
    assert "plaintext injection" in error_of([data + b" "])


@pytest.mark.parametrize("banner", [
    b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 400 Bad Request\r\n\r\n",
    b"SIP/2.0 400 Bad Request\r\n", b"\x16\x03\x01\x00\x05hello",
])
def test_non_xmpp_banner(banner: bytes) -> None:
    message = error_of([banner])
    assert message.startswith("not an XMPP stream (received b")
    assert repr(banner[:10])[2:-1] in message


def test_wrong_root_element() -> None:
    assert "first element <html>" in error_of([b"<html><body>"])


def test_client_namespace_refused() -> None:
    data = HEADER.replace(b"jabber:server'", b"jabber:client'")
    assert "jabber:client" in error_of([data])


def test_old_version_refused() -> None:
    assert "version 1.0" in error_of([HEADER.replace(b"org' version='1.0'", b"org'")])


# --- the lab's server side -------------------------------------------------------------------------


def test_server_negotiator_reads_client() -> None:
    client = XmppNegotiator("example.org", "scanner.test")
    server = XmppServerNegotiator()
    server.receive_data(client.initiate() + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert server.next_event() == StreamOpened(None, "scanner.test", "1.0", "example.org")
    assert server.next_event() == StartTlsRequested()
    assert server.next_event() is NEED_DATA


def test_server_refuses_bytes_after_starttls() -> None:
    server = XmppServerNegotiator()
    server.receive_data(stream_header(to_domain="x.test")
                        + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><x/>")
    assert isinstance(server.next_event(), StreamOpened)
    with pytest.raises(RemoteProtocolError, match="plaintext injection"):
        server.next_event()


def test_server_bytes_round_trip_through_client() -> None:
    data = XmppServerNegotiator.accept("id1", "example.org") + PROCEED_BYTES
    assert drive([data]) == [StreamOpened("id1", "example.org", "1.0"),
                             Features(True, True, EXPECTED[1].names  # type: ignore[union-attr]
                                      ), Proceed()]
    assert DEFAULT_SERVER_FEATURES in data
