"""TLS and XMPP bytes for lab peers that misbehave on purpose: records, handshake messages,
alerts, and the two socket habits every scripted peer keeps.

* Deterministic on the wire: a scripted peer reads the client's first bytes before answering
  (:func:`client_speaks`) and then drains until the client leaves (:func:`linger`), so the
  kernel never turns an unread buffer into a reset.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import trio

from scanner.lab.listeners import (
    MAX_READ,
)

LINGER_SECONDS: Final = 30.0  # a scripted peer waits at most this long for the client to leave

# --- wire helpers ------------------------------------------------------------------------------------


async def linger(stream: trio.abc.Stream, seconds: float = LINGER_SECONDS) -> None:
    """Read and discard until the client closes (bounded in time and per read)."""
    with trio.move_on_after(seconds):
        while await stream.receive_some(MAX_READ):
            pass


async def client_speaks(stream: trio.abc.Stream) -> None:
    """Wait for the client's first bytes (a ClientHello or a stream header), so that no
    answer races the client's request and a later close is a FIN, not a reset."""
    await stream.receive_some(MAX_READ)


def tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def handshake_message(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def certificate_message(ders: Sequence[bytes]) -> bytes:
    """A TLS 1.2 Certificate handshake message carrying ``ders`` verbatim."""
    entries = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return handshake_message(11, len(entries).to_bytes(3, "big") + entries)


def server_hello_tls12() -> bytes:
    """A TLS 1.2 ServerHello for ECDHE-RSA-AES128-GCM-SHA256 with secure renegotiation."""
    extensions = b"\xff\x01\x00\x01\x00"  # renegotiation_info, empty
    body = (b"\x03\x03" + b"\x42" * 32 + b"\x00" + b"\xc0\x2f" + b"\x00"
            + len(extensions).to_bytes(2, "big") + extensions)
    return handshake_message(2, body)


HANDSHAKE_FAILURE_ALERT: Final = tls_record(21, b"\x02\x28")  # fatal, handshake_failure
# warning-level unrecognized_name (which does not end a handshake), then bytes that are no TLS
WARNING_THEN_GARBAGE: Final = tls_record(21, b"\x01\x70") + b"\x00" * 16
