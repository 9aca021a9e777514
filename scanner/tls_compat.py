"""Every private or version-dependent API fedscan's TLS code relies on, one shim each (Edges).

Theory of this module
---------------------
* What the handshake must see (the chain a server serves even when it aborts, the alerts it
  sends, whether it asked for a client certificate) is not in the public ``ssl`` or trio API.
  The few private hooks that give it live here and nowhere else, so an upgrade of Python,
  OpenSSL or trio that moves one breaks one named function, not the driver.
* Each shim's docstring says why it exists and what a user would lose without it.
  ``tests/test_tls_compat.py`` runs each one on this interpreter, OpenSSL and trio and fails
  the day one stops working: a red test, never evidence silently gone from every report.
* No logic beyond reaching the hook: what the messages mean is :mod:`scanner.tlswire`'s job.
"""

from __future__ import annotations

import ssl
import weakref
from typing import Any, Final

import trio

from scanner.tlswire import CT_ALERT, CT_HANDSHAKE, WireLog

_MSG_CALLBACK: Final = "_msg_callback"  # private but long-standing CPython hook (3.8+)


class MessageDispatch:
    """The message callback of one shared context: routes each connection's TLS messages to
    that connection's :class:`scanner.tlswire.WireLog` (keyed by its SSLObject, weakly, so a
    finished connection leaves nothing behind).

    Why: ``SSLContext._msg_callback`` is per context, and one context serves a whole scan
    (building one costs ~0.15 ms). Without the hook the chain of a server that aborts the
    handshake (mutual TLS demanded) is lost, and so are the alerts and the client-certificate
    request that name the cause: ``client-certificate-required`` would become
    ``tls-handshake-failed``.
    """

    __slots__ = ("logs",)

    def __init__(self) -> None:
        self.logs: weakref.WeakKeyDictionary[object, WireLog] = weakref.WeakKeyDictionary()

    def watch(self, tls: trio.SSLStream[Any], log: WireLog) -> None:
        """Send the messages of ``tls`` (not yet handshaking) to ``log``."""
        self.logs[ssl_object(tls)] = log

    @property
    def user_function(self) -> MessageDispatch:
        """What ``SSLContext._msg_callback``'s getter returns: it unwraps its own wrapper by
        this attribute, and :func:`install_msg_callback` installs us without one."""
        return self

    def __call__(self, conn: object, direction: str, version: int, content_type: int,
                 msg_type: int, data: bytes) -> None:
        if content_type != CT_HANDSHAKE and content_type != CT_ALERT:
            return  # record headers, ChangeCipherSpec, inner content types: ~half the calls
        log = self.logs.get(conn)
        if log is not None:
            log.on_message(conn, direction, version, content_type, msg_type, data)


def install_msg_callback(ctx: ssl.SSLContext, callback: MessageDispatch) -> None:
    """Set the message callback on the C-level context, bypassing ``ssl.SSLContext``'s Python
    wrapper (``ssl._ssl._SSLContext._msg_callback``, private, CPython 3.8+).

    Why the C level: the wrapper turns version, content type and message type into enums on
    every call (~30 per handshake) and we compare plain ints: about 2 % of the handshake stage
    at a thousand endpoints (docs/performance.md). The arguments are otherwise identical.
    Falls back to the wrapped hook if an interpreter lacks the C-level attribute. If both
    went, messages would stop arriving (see :class:`MessageDispatch` for what is lost);
    the test of this shim runs a handshake and checks the Certificate message arrives.
    """
    raw = getattr(ssl, "_ssl", None)
    descriptor = getattr(getattr(raw, "_SSLContext", None), "__dict__", {}).get(_MSG_CALLBACK)
    if descriptor is not None and hasattr(descriptor, "__set__"):
        descriptor.__set__(ctx, callback)
    else:
        setattr(ctx, _MSG_CALLBACK, callback)


def ssl_object(tls: trio.SSLStream[Any]) -> ssl.SSLObject:
    """The ``ssl.SSLObject`` behind a trio SSLStream: trio keeps it private (``_ssl_object``,
    unchanged since trio 0.2). It is the key the message callback is called with and the
    holder of the served chain; without it neither can be read (every handshake would end
    in ``scan-error``)."""
    obj: ssl.SSLObject = tls._ssl_object
    return obj


def served_chain(tls: trio.SSLStream[Any]) -> tuple[bytes, ...]:
    """The chain the peer served, DER, in its order, unverified (we never verify here).

    ``SSLObject.get_unverified_chain`` is public from Python 3.13; on 3.10 to 3.12 it exists
    only on the private C object (``_sslobj``) and returns ``_ssl.Certificate`` objects that
    need the private ``_ssl.ENCODING_DER``. ``getpeercert(True)`` would give the leaf alone,
    so without this the served intermediates (``chain-incomplete``) could not be judged after a
    completed handshake; the message callback's copy is the fallback in the driver.
    """
    obj: Any = ssl_object(tls)
    if hasattr(obj, "get_unverified_chain"):
        return tuple(bytes(c) for c in obj.get_unverified_chain() or ())
    certs = obj._sslobj.get_unverified_chain() or ()
    return tuple(c.public_bytes(ssl._ssl.ENCODING_DER) for c in certs)  # type: ignore[attr-defined]


def pending_outgoing(tls: trio.SSLStream[Any]) -> bytes:
    """What OpenSSL wrote for the peer but trio has not sent (trio's private ``_outgoing``
    MemoryBIO), read out; ``b""`` when there is none or the attribute is gone.

    The lab's servers use it to send the alert OpenSSL wrote when it rejected a handshake
    (``certificate_required``), as real servers do: trio drops it when the stream breaks.
    Without it the lab's mutual-TLS peers would hang up without the alert, and the tests that
    prove ``client-certificate-required`` from the alert would fail.
    """
    outgoing = getattr(tls, "_outgoing", None)
    if isinstance(outgoing, ssl.MemoryBIO) and outgoing.pending:
        return outgoing.read()
    return b""
