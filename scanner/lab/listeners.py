"""Loopback federation listeners: a SIP Edge, an XMPP s2s server and an XMPPS (XEP-0368) one.

Theory of this module
---------------------
* The lab is a federation peer in miniature, for tests and demos, never for production.
  Each ``serve_*`` binds, reports the bound port through ``task_status.started(port)``
  (port 0 means ephemeral) and serves until cancelled.
* Like a real Edge, a listener *requests* a client certificate but does not require one
  (``CERT_OPTIONAL`` when a client CA is given), so a scanner sees CertificateRequest.
* A client can never take a listener down: each connection runs in its own task under its
  own deadline, reads are bounded, and any failure ends that connection only.
* Behaviour is a hook, not a fork. :class:`Behaviour` holds every decision a hostile or
  broken variant would change (TLS settings, what happens on accept, the XMPP features, the
  answer to ``<starttls/>``, what happens after TLS). Subclass it to build a misbehaving
  peer; the listeners themselves stay small and honest.
* XMPP parsing goes through :class:`scanner.xmpp.XmppServerNegotiator`, the same hardened
  reader the scanner uses.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Final

import trio

from scanner.tls_compat import pending_outgoing
from scanner.xmpp import (
    NeedData,
    ProtocolError,
    StartTlsRequested,
    StreamOpened,
    XmppServerNegotiator,
)

log = logging.getLogger(__name__)

MAX_READ: Final = 4096
CONNECTION_TIMEOUT: Final = 10.0
XMPPS_ALPN: Final = "xmpp-server"

Handler = Callable[[trio.abc.Stream], Awaitable[None]]


class Behaviour:
    """The decisions of a lab listener. Override methods to make a misbehaving variant.

    Defaults behave like a healthy peer. Hooks receive the stream so a variant can stall,
    drip, inject bytes or close at any step.
    """

    def configure_tls(self, ctx: ssl.SSLContext) -> None:
        """Adjust the server TLS context (e.g. cap ``maximum_version`` for a legacy peer)."""

    def transport(self, stream: trio.SocketStream) -> trio.abc.Stream:
        """The stream the connection is served on, before anything else happens (e.g. one
        that delays writes by a round-trip time, or a connection counter); default: as is."""
        return stream

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        """Called first on every connection; return False to end it (after stalling etc.)."""
        return True

    def features(self, domain: str) -> bytes | None:
        """Stream features for ``domain``; None means the default (STARTTLS required)."""
        return None

    def accepts_domain(self, domain: str | None, domains: Collection[str]) -> bool:
        return domain is not None and domain in domains

    async def on_starttls(self, stream: trio.abc.Stream) -> bool:
        """Answer ``<starttls/>``; the default sends ``<proceed/>`` and starts TLS."""
        await stream.send_all(XmppServerNegotiator.proceed())
        return True

    async def after_tls(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        """After the handshake: read a little (bounded), then the connection closes."""
        await stream.receive_some(MAX_READ)


DEFAULT_BEHAVIOUR: Final = Behaviour()


# --- TLS context ------------------------------------------------------------------------------------


def server_context(cert_chain_file: Path, key_file: Path, *, client_ca_file: Path | None,
                   alpn: list[str] | None = None,
                   behaviour: Behaviour = DEFAULT_BEHAVIOUR) -> ssl.SSLContext:
    """A server context that asks for, but does not demand, a client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_chain_file, key_file)
    except ssl.SSLError as exc:
        if "too weak" not in str(exc):
            raise
        # a legacy chain (a SHA-1 intermediate) is served as the legacy servers that still
        # send one do: OpenSSL's default security level refuses to even load it
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(cert_chain_file, key_file)
    if client_ca_file is not None:
        ctx.load_verify_locations(client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    behaviour.configure_tls(ctx)
    return ctx


# --- serving machinery -----------------------------------------------------------------------------


def _guarded(handler: Handler, timeout: float,
             behaviour: Behaviour) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """One connection's deadline and failure boundary: nothing escapes to the listener."""

    async def run(stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(timeout):
                await handler(behaviour.transport(stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ProtocolError,
                ssl.SSLError) as exc:
            log.debug("lab connection ended: %r", exc)
        except Exception:  # a lab bug: log it, keep serving others
            log.exception("lab connection handler failed")
        finally:
            await trio.aclose_forcefully(stream)

    return run


async def _serve(address: str, port: int, handler: Handler, timeout: float,
                 task_status: trio.TaskStatus[int], behaviour: Behaviour) -> None:
    listeners = await trio.open_tcp_listeners(port, host=address)
    bound = listeners[0].socket.getsockname()[1]
    task_status.started(bound)
    await trio.serve_listeners(_guarded(handler, timeout, behaviour), listeners)


async def _tls_then(stream: trio.abc.Stream, ctx: ssl.SSLContext,
                    behaviour: Behaviour) -> None:
    tls = trio.SSLStream(stream, ctx, server_side=True, https_compatible=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError:
        await _send_final_alert(tls, stream)
        raise
    await behaviour.after_tls(tls)


async def _send_final_alert(tls: trio.SSLStream[trio.abc.Stream],
                            transport: trio.abc.Stream) -> None:
    """Send the alert OpenSSL wrote when it rejected the handshake.

    Real servers (OpenSSL, SChannel) send e.g. ``certificate_required`` before closing, and
    the scanner classifies failures by that alert; trio drops it when the stream breaks, so
    the lab fetches it from trio's outgoing buffer (private: :mod:`scanner.tls_compat`).
    """
    alert = pending_outgoing(tls)
    if alert:
        with trio.move_on_after(1.0):
            await transport.send_all(alert)


# --- SIP (direct TLS) -----------------------------------------------------------------------------


async def serve_sip_tls(address: str, port: int, cert_chain_file: Path, key_file: Path, *,
                        client_ca_file: Path | None = None,
                        behaviour: Behaviour = DEFAULT_BEHAVIOUR,
                        connection_timeout: float = CONNECTION_TIMEOUT,
                        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """A SIP federation / access Edge port: direct TLS on accept."""
    ctx = server_context(cert_chain_file, key_file, client_ca_file=client_ca_file,
                         behaviour=behaviour)

    async def handle(stream: trio.abc.Stream) -> None:
        if await behaviour.on_accept(stream):
            await _tls_then(stream, ctx, behaviour)

    await _serve(address, port, handle, connection_timeout, task_status, behaviour)


# --- XMPPS (XEP-0368 direct TLS) -------------------------------------------------------------------


async def serve_xmpps(address: str, port: int, cert_chain_file: Path, key_file: Path, *,
                      client_ca_file: Path | None = None,
                      behaviour: Behaviour = DEFAULT_BEHAVIOUR,
                      connection_timeout: float = CONNECTION_TIMEOUT,
                      task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Direct TLS with ALPN ``xmpp-server``; the XMPP stream would follow inside TLS."""
    ctx = server_context(cert_chain_file, key_file, client_ca_file=client_ca_file,
                         alpn=[XMPPS_ALPN], behaviour=behaviour)

    async def handle(stream: trio.abc.Stream) -> None:
        if await behaviour.on_accept(stream):
            await _tls_then(stream, ctx, behaviour)

    await _serve(address, port, handle, connection_timeout, task_status, behaviour)


# --- XMPP s2s with STARTTLS ---------------------------------------------------------------------------


async def _next_client_event(stream: trio.abc.Stream,
                             negotiator: XmppServerNegotiator) -> object:
    while True:
        event = negotiator.next_event()
        if not isinstance(event, NeedData):
            return event
        negotiator.receive_data(bytes(await stream.receive_some(MAX_READ)))


async def _xmpp_open(stream: trio.abc.Stream, negotiator: XmppServerNegotiator,
                     domains: Collection[str], behaviour: Behaviour) -> bool:
    """Read the client's header; answer with ours and features, or a host-unknown error."""
    event = await _next_client_event(stream, negotiator)
    if not isinstance(event, StreamOpened):
        return False
    domain = event.to_domain
    if not behaviour.accepts_domain(domain, domains):
        await stream.send_all(XmppServerNegotiator.reject(
            "host-unknown", f"this server does not serve {domain}", stream_id="lab"))
        return False
    assert domain is not None
    await stream.send_all(XmppServerNegotiator.accept("lab", domain, behaviour.features(domain)))
    return True


async def serve_xmpp_starttls(address: str, port: int, cert_chain_file: Path, key_file: Path,
                              *, domains: Collection[str], client_ca_file: Path | None = None,
                              behaviour: Behaviour = DEFAULT_BEHAVIOUR,
                              connection_timeout: float = CONNECTION_TIMEOUT,
                              task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
                              ) -> None:
    """An XMPP s2s port: stream header, features (STARTTLS required, dialback), proceed, TLS."""
    ctx = server_context(cert_chain_file, key_file, client_ca_file=client_ca_file,
                         behaviour=behaviour)
    wanted = frozenset(domains)

    async def handle(stream: trio.abc.Stream) -> None:
        if not await behaviour.on_accept(stream):
            return
        negotiator = XmppServerNegotiator()
        if not await _xmpp_open(stream, negotiator, wanted, behaviour):
            return
        event = await _next_client_event(stream, negotiator)
        if not isinstance(event, StartTlsRequested):
            return
        if await behaviour.on_starttls(stream):
            await _tls_then(stream, ctx, behaviour)

    await _serve(address, port, handle, connection_timeout, task_status, behaviour)
