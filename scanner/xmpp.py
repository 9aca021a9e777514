"""Sans-I/O XMPP server-to-server STARTTLS negotiation (RFC 6120 sections 4 and 5).

Theory of this module
---------------------
Everything a peer sends before TLS is hostile until proven otherwise, so this module owns
no socket: it eats bytes (:meth:`receive_data`), yields events (:meth:`next_event`) and turns
our intentions into bytes (:meth:`XmppNegotiator.initiate`, :meth:`XmppNegotiator.start_tls`),
in the manner of h11. The rules it keeps:

* One hardened parser. Input goes through ``xml.parsers.expat`` with namespaces on and the
  restricted XML of RFC 6120 11.1: no DTD, hence no entity beyond the five predefined ones,
  no comments, no processing instructions. A DOCTYPE is refused before expat could expand
  anything, so "billion laughs" and external entities end as a protocol error.
* Bounded. At most ``max_size`` bytes are parsed before the plaintext phase ends; beyond that
  the peer is at fault. Undelivered input is held up to the same bound, never more.
* Events depend on the bytes, never on how they were chunked. Events are emitted only when a
  whole first-level element (or the stream header) has been parsed, and parsing happens
  lazily in :meth:`next_event`, so a peer's error surfaces after the events that preceded it.
* The plaintext phase ends exactly at ``<proceed/>`` (client side) or ``<starttls/>``
  (server side). Nothing may follow it in plaintext: a byte after it, in the same read or a
  later one, is a STARTTLS injection attempt (CVE-2011-0411 class) and a protocol error, and
  the :class:`Proceed` event is never returned while such bytes are buffered.
* Peer faults are :class:`RemoteProtocolError`; our own misuse is :class:`LocalProtocolError`.
  Once a peer fault is raised, the negotiator stays broken and raises it again.
"""

from __future__ import annotations

import xml.parsers.expat as expat
from collections import deque
from dataclasses import dataclass, field
from typing import Final

STREAMS_NS: Final = "http://etherx.jabber.org/streams"
SERVER_NS: Final = "jabber:server"
DIALBACK_NS: Final = "jabber:server:dialback"
TLS_NS: Final = "urn:ietf:params:xml:ns:xmpp-tls"
STREAM_ERRORS_NS: Final = "urn:ietf:params:xml:ns:xmpp-streams"
DIALBACK_FEATURE_NS: Final = "urn:xmpp:features:dialback"
SASL_NS: Final = "urn:ietf:params:xml:ns:xmpp-sasl"

DEFAULT_MAX_SIZE: Final = 65536
_SNIPPET: Final = 40

_STREAM: Final = f"{{{STREAMS_NS}}}stream"
_FEATURES: Final = f"{{{STREAMS_NS}}}features"
_ERROR: Final = f"{{{STREAMS_NS}}}error"
_STARTTLS: Final = f"{{{TLS_NS}}}starttls"
_REQUIRED: Final = f"{{{TLS_NS}}}required"
_PROCEED: Final = f"{{{TLS_NS}}}proceed"
_FAILURE: Final = f"{{{TLS_NS}}}failure"
_ERROR_TEXT: Final = f"{{{STREAM_ERRORS_NS}}}text"
_MECHANISMS: Final = f"{{{SASL_NS}}}mechanisms"
_MECHANISM: Final = f"{{{SASL_NS}}}mechanism"

STARTTLS_BYTES: Final = f"<starttls xmlns='{TLS_NS}'/>".encode()
PROCEED_BYTES: Final = f"<proceed xmlns='{TLS_NS}'/>".encode()


class ProtocolError(Exception):
    """Base of both error kinds; ``str(error)`` is a message fit for a report."""


class LocalProtocolError(ProtocolError):
    """We used the negotiator out of order (a bug in the caller, not the peer's fault)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: malformed, hostile, oversized or out-of-order input."""


# --- events ---------------------------------------------------------------------------------


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


class NeedData:
    """Sentinel type: feed more bytes with ``receive_data`` before asking again."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

Event = (StreamOpened | Features | Proceed | StartTlsFailure | StartTlsRequested | StreamError
         | StreamClosed | SaslSuccess | SaslFailure | AuthRequested)


# --- the hardened reader ----------------------------------------------------------------------


@dataclass
class _Element:
    """A first-level element, kept small: it is built only from bytes under the cap."""

    name: str
    attrs: dict[str, str]
    start: int
    children: list[_Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class _Stop(Exception):
    """Raised from a handler to stop expat at the end of the plaintext phase."""


def _clark(expat_name: str) -> str:
    """Expat reports ``"uri local"``; Clark notation is unambiguous in reports."""
    uri, _, local = expat_name.rpartition(" ")
    return f"{{{uri}}}{local}" if uri else local


def _tag_end(buf: bytes | bytearray, start: int) -> int:
    """Offset just after the ``>`` closing the tag that begins at ``start``.

    ``>`` may legally appear inside a quoted attribute value, so quotes are tracked.
    """
    quote: int | None = None
    for i in range(start, len(buf)):
        c = buf[i]
        if quote is not None:
            if c == quote:
                quote = None
        elif c in (0x22, 0x27):
            quote = c
        elif c == 0x3E:
            return i + 1
    return len(buf)  # unreachable for a tag expat has already reported


def _snippet(data: bytes | bytearray) -> bytes:
    return bytes(data[:_SNIPPET])


def _unexpected_start_message(data: bytes | bytearray) -> str:
    return f"not an XMPP stream (received {_snippet(data)!r})"


class _StreamReader:
    """Incremental, bounded, chunking-independent reader of one XMPP stream direction.

    Subclasses say which first-level element ends the plaintext phase (``_final``) and
    turn first-level elements into events (``_element_event``).
    """

    _final: str = ""

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        self._max_size = max_size
        self._seen = bytearray()  # every byte given to expat (at most max_size)
        self._pending = bytearray()  # received, not yet parsed (at most max_size + 1)
        self._events: deque[Event] = deque()
        self._error: RemoteProtocolError | None = None
        self._eof = False
        self._opened = False
        self._closed = False
        self._finished = False  # the final element was parsed, nothing after it
        self._stack: list[_Element] = []
        self._stream_ns: str | None = None
        self._parser = self._make_parser()

    # -- public surface --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer peer bytes; ``b""`` means the peer closed the connection.

        Bytes after the end of the plaintext phase raise at once: no later call may be
        trusted to notice them.
        """
        if self._error is not None:
            raise self._error
        if self._finished:
            if data:
                self._fail("plaintext injection: bytes after the end of the plaintext phase")
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data after end of file")
        room = self._max_size + 1 - len(self._seen) - len(self._pending)
        self._pending += data[: max(room, 0)]

    def next_event(self) -> Event | NeedData:
        """The next event, or ``NEED_DATA``; raises the peer's fault after earlier events."""
        while True:
            if self._events:
                return self._deliver(self._events.popleft())
            if self._error is not None:
                raise self._error
            if self._closed:
                return StreamClosed()
            if self._finished:
                return NEED_DATA
            if self._pending:
                self._parse_pending()
                continue
            if self._eof:
                self._closed = True
                return StreamClosed()
            return NEED_DATA

    # -- hooks -------------------------------------------------------------------------------

    def _deliver(self, event: Event) -> Event:
        """Last check before an event leaves; subclasses enforce ordering rules here."""
        return event

    def _check_open(self, event: StreamOpened, default_ns: str | None) -> None:
        raise NotImplementedError

    def _element_event(self, element: _Element) -> Event | None:
        raise NotImplementedError

    # -- parsing ---------------------------------------------------------------------------------

    def _make_parser(self) -> expat.XMLParserType:
        p = expat.ParserCreate(encoding="UTF-8", namespace_separator=" ")
        if hasattr(p, "SetReparseDeferralEnabled"):  # expat >= 2.6 would delay small chunks
            p.SetReparseDeferralEnabled(False)
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.UseForeignDTD(False)
        p.StartDoctypeDeclHandler = self._on_doctype
        p.EntityDeclHandler = self._on_entity_decl
        p.ExternalEntityRefHandler = self._on_external_entity
        p.CommentHandler = self._on_comment
        p.ProcessingInstructionHandler = self._on_pi
        p.StartNamespaceDeclHandler = self._on_namespace
        p.StartElementHandler = self._on_start
        p.EndElementHandler = self._on_end
        p.CharacterDataHandler = self._on_text
        return p

    def _parse_pending(self) -> None:
        room = self._max_size - len(self._seen)
        chunk = bytes(self._pending[:room])
        del self._pending[:room]
        self._seen += chunk
        try:
            self._parser.Parse(chunk, False)
        except _Stop:
            return
        except expat.ExpatError as exc:
            self._fail(self._expat_message(exc))
        except RemoteProtocolError:
            return  # already recorded by _fail inside a handler
        if self._pending:
            self._fail(f"more than {self._max_size} bytes before TLS (oversized or endless input)")

    def _expat_message(self, exc: expat.ExpatError) -> str:
        if not self._opened:
            return _unexpected_start_message(self._seen)
        return f"malformed XML: {expat.ErrorString(exc.code)} at line {exc.lineno}"

    def _fail(self, message: str) -> None:
        """Record and raise a peer fault; events already parsed stay deliverable."""
        self._error = RemoteProtocolError(message)
        raise self._error

    # -- expat handlers ------------------------------------------------------------------------

    def _on_doctype(self, *_args: object) -> None:
        self._fail("DOCTYPE is forbidden in XMPP (possible entity expansion attack)")

    def _on_entity_decl(self, *_args: object) -> None:
        self._fail("entity declarations are forbidden in XMPP")

    def _on_external_entity(self, *_args: object) -> int:
        self._fail("external entities are forbidden in XMPP")
        return 0

    def _on_comment(self, _data: str) -> None:
        self._fail("XML comments are forbidden in XMPP (RFC 6120 11.1)")

    def _on_pi(self, _target: str, _data: str) -> None:
        self._fail("processing instructions are forbidden in XMPP (RFC 6120 11.1)")

    def _on_namespace(self, prefix: str | None, uri: str) -> None:
        if not self._opened and prefix is None:
            self._stream_ns = uri

    def _on_start(self, name: str, attrs: dict[str, str]) -> None:
        qname = _clark(name)
        if not self._opened:
            self._open(qname, attrs)
            return
        element = _Element(qname, {_clark(k): v for k, v in attrs.items()},
                           self._parser.CurrentByteIndex)
        if self._stack:
            self._stack[-1].children.append(element)
        self._stack.append(element)

    def _open(self, qname: str, attrs: dict[str, str]) -> None:
        if qname != _STREAM:
            self._fail(f"not an XMPP stream (first element <{qname}>)")
        self._opened = True
        version = attrs.get("version", "")
        if version.split(".")[0] != "1":
            self._fail(f"stream version {version or 'missing'!r}: STARTTLS requires a "
                       "version 1.0 stream")
        event = StreamOpened(attrs.get("id"), attrs.get("from"), version, attrs.get("to"))
        self._check_open(event, self._stream_ns)
        self._events.append(event)

    def _on_end(self, name: str) -> None:
        if not self._stack:  # the stream itself ended
            self._closed = True
            self._events.append(StreamClosed())
            raise _Stop
        element = self._stack.pop()
        if self._stack:
            return
        event = self._element_event(element)
        if event is not None:
            self._events.append(event)
        if element.name == self._final:
            self._finish(element)

    def _finish(self, element: _Element) -> None:
        """End of plaintext: anything after the final element's ``>`` is injected."""
        start_tag_end = _tag_end(self._seen, element.start)
        if self._seen[start_tag_end - 2 : start_tag_end] == b"/>":
            end = start_tag_end
        else:
            end = _tag_end(self._seen, self._parser.CurrentByteIndex)
        if end < len(self._seen) or self._pending:
            self._events.pop()  # never hand out Proceed with bytes behind it
            self._fail(f"plaintext injection: bytes after <{element.name}> "
                       f"(received {_snippet(self._seen[end:] + self._pending)!r})")
        self._finished = True
        raise _Stop

    def _on_text(self, data: str) -> None:
        if self._stack:
            self._stack[-1].text.append(data)


# --- client side -------------------------------------------------------------------------------


def _features(element: _Element) -> Features:
    names = tuple(child.name for child in element.children)
    starttls = next((c for c in element.children if c.name == _STARTTLS), None)
    required = starttls is not None and any(c.name == _REQUIRED for c in starttls.children)
    mechanisms = tuple(
        "".join(m.text).strip().upper()
        for c in element.children if c.name == _MECHANISMS
        for m in c.children if m.name == _MECHANISM
    )
    return Features(starttls is not None, required, names, mechanisms)


def _stream_error(element: _Element) -> StreamError:
    condition = "undefined-condition"
    text: str | None = None
    for child in element.children:
        ns, _, local = child.name[1:].partition("}")
        if ns != STREAM_ERRORS_NS:
            continue  # application-specific conditions are extra detail, not the condition
        if child.name == _ERROR_TEXT:
            text = "".join(child.text)
        else:
            condition = local
    return StreamError(condition, text)


class XmppNegotiator(_StreamReader):
    """The initiating server's side of an s2s stream, up to ``<proceed/>``.

    Use: send :meth:`initiate`; feed peer bytes; on :class:`Features` with ``starttls``
    send :meth:`start_tls`; on :class:`Proceed` hand the raw connection to TLS.
    """

    _final = _PROCEED

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

    def _element_event(self, element: _Element) -> Event | None:
        if element.name == _FEATURES:
            return _features(element)
        if element.name == _ERROR:
            return _stream_error(element)
        if element.name == _PROCEED:
            return Proceed()
        if element.name == _FAILURE:
            return StartTlsFailure()
        return None  # e.g. dialback stanzas before TLS: not ours to judge

    def _deliver(self, event: Event) -> Event:
        if isinstance(event, Features):
            if self._features_seen:
                self._error = RemoteProtocolError("stream features sent twice before TLS")
                raise self._error
            self._features_seen = True
            self._starttls_offered = event.starttls
        elif isinstance(event, Proceed | StartTlsFailure) and not self._starttls_sent:
            self._error = RemoteProtocolError(
                f"unsolicited <{'proceed' if isinstance(event, Proceed) else 'failure'}/> "
                "before <starttls/>")
            raise self._error
        return event


# --- server side (the lab's listener) ------------------------------------------------------------


class XmppServerNegotiator(_StreamReader):
    """The receiving server's side, up to the client's ``<starttls/>``; used by the lab.

    Parsing goes through the same hardened reader, so the lab is no weaker than the scanner.
    """

    _final = _STARTTLS

    def _check_open(self, event: StreamOpened, default_ns: str | None) -> None:
        if default_ns != SERVER_NS:
            self._fail(f"stream namespace {default_ns!r}, expected {SERVER_NS!r}")

    def _element_event(self, element: _Element) -> Event | None:
        return StartTlsRequested() if element.name == _STARTTLS else None

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


DEFAULT_SERVER_FEATURES: Final = (
    f"<stream:features><starttls xmlns='{TLS_NS}'><required/></starttls>"
    f"<dialback xmlns='{DIALBACK_FEATURE_NS}'><errors/></dialback></stream:features>"
).encode()


def stream_header(*, to_domain: str | None = None, from_domain: str | None = None,
                  stream_id: str | None = None) -> bytes:
    """An s2s stream header; attribute values are XML-escaped (a domain is peer-influenced)."""
    attrs = [f"xmlns='{SERVER_NS}'", f"xmlns:stream='{STREAMS_NS}'", f"xmlns:db='{DIALBACK_NS}'"]
    for name, value in (("to", to_domain), ("from", from_domain), ("id", stream_id)):
        if value is not None:
            attrs.append(f"{name}='{_escape_attr(value)}'")
    attrs.append("version='1.0'")
    return f"<?xml version='1.0'?><stream:stream {' '.join(attrs)}>".encode()


def stream_error_bytes(condition: str, text: str | None = None) -> bytes:
    body = f"<{condition} xmlns='{STREAM_ERRORS_NS}'/>"
    if text is not None:
        body += f"<text xmlns='{STREAM_ERRORS_NS}'>{_escape_text(text)}</text>"
    return f"<stream:error>{body}</stream:error>".encode()


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(value: str) -> str:
    return _escape_text(value).replace("'", "&apos;").replace('"', "&quot;")
