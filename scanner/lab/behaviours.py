"""Misbehaving peers: each way a server can break that fedscan promises to survive is one
:class:`~scanner.lab.listeners.Behaviour` here (TCP, TLS, XMPP).

* A peer that should look "closed" sends FIN, never a racy RST; a peer that should "reset"
  resets after the client has read what came before.
* Stallers stall only while the client stays: silence and drips end when the scanner hangs
  up, so a scan of thousands of hostile endpoints does not leave the lab holding sockets.
* Malformed DER cannot be served through OpenSSL (it refuses to load it), so
  :class:`FakeTls12Certificate` is a tiny TLS 1.2 server of our own that writes ServerHello,
  a Certificate message with whatever bytes it is given, and ServerHelloDone. The scanner's
  TLS message callback captures the message before OpenSSL rejects it, which is exactly the
  path a broken real server takes.
"""

from __future__ import annotations

import socket
import ssl
import struct
import warnings
from collections.abc import Sequence
from typing import Final

import trio

from scanner.lab.listeners import (
    Behaviour,
)
from scanner.lab.wire import (
    certificate_message,
    client_speaks,
    handshake_message,
    linger,
    server_hello_tls12,
    tls_record,
)
from scanner.xmpp import PROCEED_BYTES, STREAMS_NS, TLS_NS, stream_error_bytes, stream_header

DRIP_INTERVAL: Final = 1.0  # "a byte per second"

# --- TCP misbehaviour --------------------------------------------------------------------------------


class CloseOnAccept(Behaviour):
    """Accepts, then closes cleanly (FIN) without a byte."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        if isinstance(stream, trio.SocketStream):
            await stream.send_eof()
        await linger(stream)
        return False


class SilentOnAccept(Behaviour):
    """Accepts, reads whatever comes, never answers (a black-holing proxy)."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await linger(stream)
        return False


class ResetMidHandshake(Behaviour):
    """Reads the ClientHello, sends the first bytes of a ServerHello, then resets (RST)."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(tls_record(22, server_hello_tls12())[:7])
        await trio.sleep(0.2)  # let the client read them: an RST discards unread data
        if isinstance(stream, trio.SocketStream):
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False


class Drip(Behaviour):
    """Sends a plausible answer one byte per ``interval`` seconds, forever.

    Every read of the client succeeds, so only a deadline on the whole exchange ends it."""

    def __init__(self, payload: bytes, interval: float = DRIP_INTERVAL) -> None:
        self.payload = payload
        self.interval = interval

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        data = self.payload + b" " * 1_000_000
        for i in range(len(data)):
            await stream.send_all(data[i : i + 1])
            await trio.sleep(self.interval)
        return False


# --- TLS misbehaviour --------------------------------------------------------------------------------


class Scripted(Behaviour):
    """Answers the client's first bytes with fixed bytes (no TLS, no XMPP), then lingers."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(self.reply)
        await linger(stream)
        return False


class TlsSettings(Behaviour):
    """A server that differs only in its TLS settings: legacy-only, demanding mutual TLS, or
    refusing the name asked for (SNI) with an unrecognized_name alert."""

    def __init__(self, *, maximum: ssl.TLSVersion | None = None,
                 require_client_cert: bool = False, reject_sni: bool = False) -> None:
        self.maximum = maximum
        self.require_client_cert = require_client_cert
        self.reject_sni = reject_sni

    def configure_tls(self, ctx: ssl.SSLContext) -> None:
        if self.maximum is not None:
            with warnings.catch_warnings():  # TLS 1.0 is deprecated: that is the point
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.maximum_version = self.maximum
                if self.maximum < ssl.TLSVersion.TLSv1_2:
                    ctx.minimum_version = self.maximum
                    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if self.require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
        if self.reject_sni:  # a virtual host with no certificate for the name asked
            ctx.sni_callback = lambda _obj, _name, _ctx: ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME


class DropWithoutClientCert(Behaviour):
    """Asks for a client certificate and, finding none, closes the TCP connection right after
    the TLS 1.3 handshake: no alert, no session ticket (as some servers that require mutual TLS
    do; OpenSSL's own servers send certificate_required instead). ``reset``: with an RST (the
    client has read everything by then) instead of a FIN."""

    def __init__(self, *, reset: bool = False) -> None:
        self.reset = reset

    def configure_tls(self, ctx: ssl.SSLContext) -> None:
        ctx.num_tickets = 0  # a ticket would tell the client it was accepted

    async def after_tls(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        if stream.getpeercert(binary_form=True):
            await super().after_tls(stream)
            return
        transport = stream.transport_stream
        if self.reset and isinstance(transport, trio.SocketStream):
            transport.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await trio.aclose_forcefully(transport)  # FIN (or RST), without close_notify


class FakeTls12Certificate(Behaviour):
    """A hand-written TLS 1.2 server whose Certificate message carries ``ders`` verbatim.

    OpenSSL will not serve malformed DER, so this writes the records itself."""

    def __init__(self, ders: Sequence[bytes]) -> None:
        self.flight = b"".join(
            tls_record(22, msg)
            for msg in (server_hello_tls12(), certificate_message(ders), handshake_message(14, b""))
        )

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(self.flight)
        await linger(stream)
        return False


# --- XMPP misbehaviour -------------------------------------------------------------------------------


def xmpp_header(domain: str = "hostile.test") -> bytes:
    return stream_header(from_domain=domain, stream_id="hostile")


class Features(Behaviour):
    """Answers the stream header with these features (bytes as sent, anything goes)."""

    def __init__(self, features: bytes) -> None:
        self.payload = features

    def features(self, domain: str) -> bytes | None:
        return self.payload


class RefuseStartTls(Behaviour):
    async def on_starttls(self, stream: trio.abc.Stream) -> bool:
        await stream.send_all(f"<failure xmlns='{TLS_NS}'/></stream:stream>".encode())
        await linger(stream)
        return False


class InjectAfterProceed(Behaviour):
    """``<proceed/>`` followed by plaintext in the same write (CVE-2011-0411 class)."""

    async def on_starttls(self, stream: trio.abc.Stream) -> bool:
        await stream.send_all(PROCEED_BYTES + b"<iq type='set'>injected</iq>")
        await linger(stream)
        return False


class EndlessFeatures(Behaviour):
    """A stream header, then ``<stream:features>`` that never ends: children forever."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(xmpp_header() + b"<stream:features>")
        chunk = b"<x xmlns='urn:example:flood'/>" * 256
        while True:  # until the client hangs up (BrokenResourceError ends the connection)
            await stream.send_all(chunk)
            await trio.sleep(0)


BILLION_LAUGHS: Final = (
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    + b"".join(
        f"<!ENTITY lol{i} '{('&lol' + (str(i - 1) if i > 1 else '') + ';') * 10}'>".encode()
        for i in range(1, 10)
    )
    + b"]><stream:stream xmlns='jabber:server' xmlns:stream='" + STREAMS_NS.encode()
    + b"' version='1.0'>&lol9;"
)
EXTERNAL_ENTITY: Final = (
    b"<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
    b"<stream:stream xmlns='jabber:server' xmlns:stream='" + STREAMS_NS.encode()
    + b"' version='1.0'>&xxe;"
)
INVALID_XML: Final = xmpp_header() + b"<stream:features><starttls xmlns='" + TLS_NS.encode() + (
    b"'></stream:features>")
SSH_BANNER: Final = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"
SIP_RESPONSE: Final = (b"SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/TCP 0.0.0.0\r\n"
                       b"Content-Length: 0\r\n\r\n")
HTTP_RESPONSE: Final = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
NO_STARTTLS: Final = b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
OPTIONAL_STARTTLS: Final = (b"<stream:features><starttls xmlns='" + TLS_NS.encode() + b"'/>"
                            b"<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>")


def stream_error_reply(condition: str, text: str) -> bytes:
    return xmpp_header() + stream_error_bytes(condition, text) + b"</stream:stream>"
