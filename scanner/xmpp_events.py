"""The XMPP s2s vocabulary: namespaces, the element names we act on, and the events the
sans-I/O readers (:mod:`scanner.xmpp`, :mod:`scanner.xmpp_auth`) yield.

Events are small frozen dataclasses that depend on the bytes a peer sent, never on how they
were chunked; element names are in Clark notation (``{namespace}local``), unambiguous in a
report. "Need more data" and the two error kinds are :mod:`scanner.sansio`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

STREAMS_NS: Final = "http://etherx.jabber.org/streams"
SERVER_NS: Final = "jabber:server"
DIALBACK_NS: Final = "jabber:server:dialback"
TLS_NS: Final = "urn:ietf:params:xml:ns:xmpp-tls"
STREAM_ERRORS_NS: Final = "urn:ietf:params:xml:ns:xmpp-streams"
DIALBACK_FEATURE_NS: Final = "urn:xmpp:features:dialback"
SASL_NS: Final = "urn:ietf:params:xml:ns:xmpp-sasl"

# the elements, in Clark notation
STREAM_TAG: Final = f"{{{STREAMS_NS}}}stream"
FEATURES_TAG: Final = f"{{{STREAMS_NS}}}features"
ERROR_TAG: Final = f"{{{STREAMS_NS}}}error"
STARTTLS_TAG: Final = f"{{{TLS_NS}}}starttls"
REQUIRED_TAG: Final = f"{{{TLS_NS}}}required"
PROCEED_TAG: Final = f"{{{TLS_NS}}}proceed"
TLS_FAILURE_TAG: Final = f"{{{TLS_NS}}}failure"
ERROR_TEXT_TAG: Final = f"{{{STREAM_ERRORS_NS}}}text"
MECHANISMS_TAG: Final = f"{{{SASL_NS}}}mechanisms"
MECHANISM_TAG: Final = f"{{{SASL_NS}}}mechanism"


@dataclass(frozen=True)
class StreamOpened:
    """The peer's stream header. ``to_domain`` is what a server-side reader needs."""

    stream_id: str | None
    from_domain: str | None
    version: str
    to_domain: str | None = None


@dataclass(frozen=True)
class Features:
    """``<stream:features/>``; ``names`` are the children in Clark notation ``{ns}local``."""

    starttls: bool
    starttls_required: bool
    names: tuple[str, ...]
    mechanisms: tuple[str, ...] = ()  # SASL mechanisms offered (after TLS: EXTERNAL, XEP-0178)


@dataclass(frozen=True)
class Proceed:
    """The server agreed to TLS; the very next byte on the wire is the TLS handshake."""


@dataclass(frozen=True)
class StartTlsFailure:
    """The server answered ``<starttls/>`` with ``<failure/>`` (it then closes the stream)."""


@dataclass(frozen=True)
class StartTlsRequested:
    """Server side only: the client sent ``<starttls/>`` and nothing after it."""


@dataclass(frozen=True)
class StreamError:
    """``<stream:error/>``: ``condition`` is the defined condition's local name."""

    condition: str
    text: str | None


@dataclass(frozen=True)
class StreamClosed:
    """The peer sent ``</stream:stream>`` or the connection ended before TLS."""


@dataclass(frozen=True)
class SaslSuccess:
    """After TLS: the receiving server accepted our SASL EXTERNAL (certificate) authentication."""


@dataclass(frozen=True)
class SaslFailure:
    """After TLS: ``<failure/>`` to our ``<auth/>``; ``condition`` as in RFC 6120 6.5."""

    condition: str
    text: str | None


@dataclass(frozen=True)
class AuthRequested:
    """Server side, after TLS: the peer sent ``<auth mechanism=.../>`` (``data`` is its text)."""

    mechanism: str
    data: str


Event = (StreamOpened | Features | Proceed | StartTlsFailure | StartTlsRequested | StreamError
         | StreamClosed | SaslSuccess | SaslFailure | AuthRequested)
