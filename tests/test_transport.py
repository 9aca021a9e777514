"""scanner.transport over trio's in-memory streams (no socket): what the STARTTLS phase keeps
when it fails or runs out of time, what the recorder keeps, and how a connect error reads."""

from __future__ import annotations

import ssl

import pytest
import trio
import trio.testing

from scanner.tlswire import HEAD_BYTES
from scanner.transport import Failed, Recorder, StartTls, broke, connect_failure
from scanner.xmpp import TLS_NS, stream_header

DOMAIN = "contoso.test"
FEATURES = (f"<stream:features><starttls xmlns='{TLS_NS}'><required/></starttls>"
            "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>").encode()


async def negotiate(*answers: bytes, seconds: float = 5.0) -> tuple[StartTls, Failed | None, bool]:
    """StartTls against a peer that sends ``answers``, one after each thing we send."""
    ours, peer = trio.testing.memory_stream_pair()
    starttls = StartTls(DOMAIN, "fabrikam.test")
    failed: Failed | None = None

    async def serve() -> None:
        for answer in answers:
            await peer.receive_some(4096)
            await peer.send_all(answer)

    with trio.move_on_after(seconds) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            try:
                await starttls.run(ours)
            except Failed as exc:
                failed = exc
            nursery.cancel_scope.cancel()
    return starttls, failed, scope.cancelled_caught


async def test_proceed_ends_the_phase_with_the_features_kept() -> None:
    starttls, failed, _ = await negotiate(stream_header(from_domain=DOMAIN, stream_id="a") + FEATURES,
                                          f"<proceed xmlns='{TLS_NS}'/>".encode())
    assert failed is None
    assert starttls.features is not None and starttls.features.starttls_required
    assert starttls.features.names == (f"{{{TLS_NS}}}starttls", "{urn:xmpp:features:dialback}dialback")


async def test_a_refusal_keeps_the_features_it_followed() -> None:
    starttls, failed, _ = await negotiate(stream_header(from_domain=DOMAIN, stream_id="a") + FEATURES,
                                          f"<failure xmlns='{TLS_NS}'/></stream:stream>".encode())
    assert failed is not None and failed.finding.code == "starttls-refused"
    assert failed.finding.message == f"{DOMAIN}: <starttls/> answered <failure/>"
    assert starttls.features is not None and starttls.features.starttls_required


async def test_the_deadline_leaves_the_features_seen_so_far() -> None:
    # the peer offers STARTTLS, then never answers <starttls/>: the endpoint's deadline ends it
    starttls, failed, cancelled = await negotiate(
        stream_header(from_domain=DOMAIN, stream_id="a") + FEATURES, seconds=0.2)
    assert cancelled and failed is None
    assert starttls.features is not None and len(starttls.features.names) == 2


async def test_features_without_starttls() -> None:
    plain = b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
    starttls, failed, _ = await negotiate(stream_header(from_domain=DOMAIN, stream_id="a") + plain)
    assert failed is not None and failed.finding.code == "starttls-not-offered"
    assert dict(failed.finding.details) == {"features": ["{urn:xmpp:features:dialback}dialback"]}
    assert starttls.features is not None and not starttls.features.starttls


async def test_a_close_before_proceed_is_a_protocol_error() -> None:
    _, failed, _ = await negotiate(stream_header(from_domain=DOMAIN, stream_id="a") + b"</stream:stream>")
    assert failed is not None and failed.finding.code == "protocol-error"
    assert failed.finding.details["reason"] == "stream closed before <proceed/>"


async def test_the_recorder_keeps_a_bounded_head_of_the_tls_phase() -> None:
    ours, peer = trio.testing.memory_stream_pair()
    recorder = Recorder(ours)
    await peer.send_all(b"<stream:stream>")
    assert await recorder.receive_some(100) == b"<stream:stream>"
    recorder.mark()  # TLS starts here
    await peer.send_all(b"\x16" * 40)
    await recorder.receive_some(100)
    await peer.send_all(b"\x17" * 40)
    await recorder.receive_some(100)
    assert recorder.head == b"\x16" * 40 + b"\x17" * (HEAD_BYTES - 40)
    assert recorder.received == 95
    arrived = recorder.arrived(ConnectionResetError(104, "Connection reset by peer"))
    assert arrived.received == 80 and arrived.reset and arrived.head == recorder.head
    assert arrived.error == "[Errno 104] Connection reset by peer"


def test_broke_looks_through_trio_to_the_cause() -> None:
    cause = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    wrapped = trio.BrokenResourceError()
    wrapped.__cause__ = cause
    arrived = broke(wrapped)
    assert arrived.eof and not arrived.reset
    assert arrived.error == "EOF occurred in violation of protocol"


@pytest.mark.parametrize(("error", "code", "message"), [
    (ConnectionRefusedError(111, "Connection refused"), "connect-refused",
     "192.0.2.7:5061 refused the connection"),
    (OSError(113, "No route to host"), "connect-error",
     "cannot connect to 192.0.2.7:5061: [Errno 113] No route to host"),
])
def test_connect_failures(error: OSError, code: str, message: str) -> None:
    f = connect_failure(error, "192.0.2.7:5061")
    assert (f.code, f.message) == (code, message)
