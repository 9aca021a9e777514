"""Sans-I/O XMPP server-to-server STARTTLS negotiation (RFC 6120 sections 4 and 5).

Theory of this module
---------------------
Everything a peer sends before TLS is hostile until proven otherwise, so this module owns
no socket: it eats bytes (:meth:`receive_data`), yields events (:meth:`next_event`) and turns
our intentions into bytes (:meth:`XmppNegotiator.initiate`, :meth:`XmppNegotiator.start_tls`),
in the manner of h11. It is in three parts, each a module that keeps its own rules:

* the vocabulary (:mod:`scanner.xmpp_events`): namespaces, element names, and the events,
  small frozen dataclasses; "need more data" is the sentinel :data:`NEED_DATA`, and the two
  error kinds are :class:`RemoteProtocolError` (the peer's fault) and
  :class:`LocalProtocolError` (ours), all shared with SIP (:mod:`scanner.sansio`);
* the hardened, bounded, chunking-independent reader (:mod:`scanner.xmpp_stream`): expat
  without DTD, entities, comments or processing instructions; at most ``max_size`` bytes;
  events only for whole first-level elements; a byte after the phase's final element is an
  injection; once a peer fault is raised, the reader stays broken and raises it again;
* the state machines of the plaintext phase, here, one per side: which element ends the
  phase and which orders are legal. The phase ends exactly at ``<proceed/>`` (client side)
  or ``<starttls/>`` (server side). Nothing may follow it in plaintext: a byte after it, in
  the same read or a later one, is a STARTTLS injection attempt (CVE-2011-0411 class) and a
  protocol error, and the :class:`Proceed` event is never returned while such bytes are
  buffered. Features come once; ``<proceed/>`` and ``<failure/>`` only answer our
  ``<starttls/>``; ``start_tls()`` only after features offering it, and only once.

After TLS, the restarted stream and SASL EXTERNAL are :mod:`scanner.xmpp_auth`'s.
"""

from __future__ import annotations

from typing import Final

from scanner.sansio import NEED_DATA, LocalProtocolError, NeedData, ProtocolError, RemoteProtocolError
from scanner.xmpp_events import (
    DIALBACK_FEATURE_NS,
    DIALBACK_NS,
    ERROR_TAG,
    FEATURES_TAG,
    PROCEED_TAG,
    SASL_NS,
    SERVER_NS,
    STARTTLS_TAG,
    STREAM_ERRORS_NS,
    STREAMS_NS,
    TLS_FAILURE_TAG,
    TLS_NS,
    AuthRequested,
    Event,
    Features,
    Proceed,
    SaslFailure,
    SaslSuccess,
    StartTlsFailure,
    StartTlsRequested,
    StreamClosed,
    StreamError,
    StreamOpened,
)
from scanner.xmpp_stream import (
    DEFAULT_MAX_SIZE,
    Element,
    StreamReader,
    parse_features,
    parse_stream_error,
    stream_error_bytes,
    stream_header,
)

# the public names of the three parts, importable from here (as h11's are from h11)
__all__ = [
    "DEFAULT_MAX_SIZE", "DEFAULT_SERVER_FEATURES", "DIALBACK_FEATURE_NS", "DIALBACK_NS", "NEED_DATA",
    "PROCEED_BYTES", "SASL_NS", "SERVER_NS", "STARTTLS_BYTES", "STREAMS_NS", "STREAM_ERRORS_NS",
    "TLS_NS", "AuthRequested", "Event", "Features", "LocalProtocolError", "NeedData", "Proceed",
    "ProtocolError", "RemoteProtocolError", "SaslFailure", "SaslSuccess", "StartTlsFailure",
    "StartTlsRequested", "StreamClosed", "StreamError", "StreamOpened", "XmppNegotiator",
    "XmppServerNegotiator", "stream_error_bytes", "stream_header",
]

STARTTLS_BYTES: Final = f"<starttls xmlns='{TLS_NS}'/>".encode()
PROCEED_BYTES: Final = f"<proceed xmlns='{TLS_NS}'/>".encode()
DEFAULT_SERVER_FEATURES: Final = (
    f"<stream:features><starttls xmlns='{TLS_NS}'><required/></starttls>"
    f"<dialback xmlns='{DIALBACK_FEATURE_NS}'><errors/></dialback></stream:features>"
).encode()


# --- client side -------------------------------------------------------------------------------


class XmppNegotiator(StreamReader):
    """The initiating server's side of an s2s stream, up to ``<proceed/>``.

    Use: send :meth:`initiate`; feed peer bytes; on :class:`Features` with ``starttls``
    send :meth:`start_tls`; on :class:`Proceed` hand the raw connection to TLS.
    """

    _final = PROCEED_TAG

    def __init__(self, to_domain: str, from_domain: str | None = None, *,
                 max_size: int = DEFAULT_MAX_SIZE) -> None:
        super().__init__(max_size=max_size)
        self.to_domain = to_domain
        self.from_domain = from_domain
        self._initiated = False
        self._features_seen = False
        self._starttls_offered = False
        self._starttls_sent = False

    def initiate(self) -> bytes:
        """Our stream header; the peer answers with its own header and features."""
        if self._initiated:
            raise LocalProtocolError("stream already initiated")
        self._initiated = True
        return stream_header(to_domain=self.to_domain, from_domain=self.from_domain)

    def start_tls(self) -> bytes:
        """The ``<starttls/>`` request; legal once, after features offering STARTTLS."""
        if not self._starttls_offered:
            raise LocalProtocolError("start_tls() before features offering STARTTLS")
        if self._starttls_sent:
            raise LocalProtocolError("start_tls() called twice")
        self._starttls_sent = True
        return STARTTLS_BYTES

    def _check_open(self, event: StreamOpened, default_ns: str | None) -> None:
        if default_ns != SERVER_NS:
            self._fail(f"stream namespace {default_ns!r}, expected {SERVER_NS!r} "
                       "(not a server-to-server port?)")

    def _element_event(self, element: Element) -> Event | None:
        if element.name == FEATURES_TAG:
            return parse_features(element)
        if element.name == ERROR_TAG:
            return parse_stream_error(element)
        if element.name == PROCEED_TAG:
            return Proceed()
        if element.name == TLS_FAILURE_TAG:
            return StartTlsFailure()
        return None  # e.g. dialback stanzas before TLS: not ours to judge

    def _deliver(self, event: Event) -> Event:
        if isinstance(event, Features):
            if self._features_seen:
                self._fail("stream features sent twice before TLS")
            self._features_seen = True
            self._starttls_offered = event.starttls
        elif isinstance(event, Proceed | StartTlsFailure) and not self._starttls_sent:
            self._fail(f"unsolicited <{'proceed' if isinstance(event, Proceed) else 'failure'}/> "
                       "before <starttls/>")
        return event


# --- server side (the lab's listener) ------------------------------------------------------------


class XmppServerNegotiator(StreamReader):
    """The receiving server's side, up to the client's ``<starttls/>``; used by the lab.

    Parsing goes through the same hardened reader, so the lab is no weaker than the scanner.
    """

    _final = STARTTLS_TAG

    def _element_event(self, element: Element) -> Event | None:
        return StartTlsRequested() if element.name == STARTTLS_TAG else None

    @staticmethod
    def accept(stream_id: str, from_domain: str, features: bytes | None = None) -> bytes:
        """Our header followed by features (STARTTLS required plus dialback by default)."""
        header = stream_header(from_domain=from_domain, stream_id=stream_id)
        return header + (DEFAULT_SERVER_FEATURES if features is None else features)

    @staticmethod
    def proceed() -> bytes:
        return PROCEED_BYTES

    @staticmethod
    def reject(condition: str, text: str | None = None, *, from_domain: str | None = None,
               stream_id: str | None = None, header: bool = True) -> bytes:
        """A stream error (with our header first, as RFC 6120 4.9.1.2 requires) and close."""
        prefix = stream_header(from_domain=from_domain, stream_id=stream_id) if header else b""
        return prefix + stream_error_bytes(condition, text) + b"</stream:stream>"
