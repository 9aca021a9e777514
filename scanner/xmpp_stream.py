"""The hardened, bounded reader of one direction of an XMPP stream, the stream-level elements
it understands (features, stream errors), and the stream bytes we write.

Theory of this module
---------------------
Everything a peer sends is hostile until proven otherwise; :class:`StreamReader` is the one
parser every XMPP state machine of fedscan reads it through (before TLS,
:mod:`scanner.xmpp`; after it, :mod:`scanner.xmpp_auth`; and the lab's listeners). Its rules:

* One hardened parser. Input goes through ``xml.parsers.expat`` with namespaces on and the
  restricted XML of RFC 6120 11.1: no DTD, hence no entity beyond the five predefined ones,
  no comments, no processing instructions. A DOCTYPE is refused before expat could expand
  anything, so "billion laughs" and external entities end as a protocol error.
* Bounded. At most ``max_size`` bytes are parsed in all; beyond that the peer is at fault.
  Undelivered input is held up to the same bound, never more.
* Events depend on the bytes, never on how they were chunked. Events are emitted only when a
  whole first-level element (or the stream header) has been parsed, and parsing happens
  lazily in :meth:`StreamReader.next_event`, so a peer's error surfaces after the events that
  preceded it.
* A subclass may name a final element (:attr:`StreamReader._final`): the phase ends exactly
  there, and a byte after it, in the same read or a later one, is an injection attempt
  (CVE-2011-0411 class) and a protocol error; the final element's event is never returned
  while such bytes are buffered.
* Peer faults are :class:`~scanner.sansio.RemoteProtocolError`, our own misuse
  :class:`~scanner.sansio.LocalProtocolError`; once a peer fault is raised, the reader stays
  broken and raises it again.
"""

from __future__ import annotations

import xml.parsers.expat as expat
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from scanner.sansio import NEED_DATA, BoundedReader, NeedData, RemoteProtocolError, snippet
from scanner.xmpp_events import (
    DIALBACK_NS,
    ERROR_TEXT_TAG,
    MECHANISM_TAG,
    MECHANISMS_TAG,
    REQUIRED_TAG,
    SERVER_NS,
    STARTTLS_TAG,
    STREAM_ERRORS_NS,
    STREAM_TAG,
    STREAMS_NS,
    Event,
    Features,
    StreamClosed,
    StreamError,
    StreamOpened,
)

DEFAULT_MAX_SIZE: Final = 65536


@dataclass
class Element:
    """A first-level element, kept small: it is built only from bytes under the cap."""

    name: str
    attrs: dict[str, str]
    start: int
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class _Stop(Exception):
    """Raised from a handler to stop expat at the end of the phase."""


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


class StreamReader(BoundedReader):
    """Incremental, bounded, chunking-independent reader of one XMPP stream direction.

    Subclasses say which first-level element ends the phase (``_final``), check the stream
    header (:meth:`_check_open`) and turn first-level elements into events
    (:meth:`_element_event`).
    """

    _final: str = ""

    def __init__(self, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        super().__init__()  # _buf: received, not yet parsed (at most max_size + 1 with _seen)
        self._max_size = max_size
        self._seen = bytearray()  # every byte given to expat (at most max_size)
        self._events: deque[Event] = deque()
        self._opened = False
        self._closed = False
        self._finished = False  # the final element was parsed, nothing after it
        self._stack: list[Element] = []
        self._stream_ns: str | None = None
        self._parser = self._make_parser()

    # -- public surface --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffer peer bytes; ``b""`` means the peer closed the connection.

        Bytes after the end of the phase raise at once: no later call may be trusted to
        notice them.
        """
        if self._finished and self._error is None:
            if data:
                self._fail("plaintext injection: bytes after the end of the plaintext phase")
            return
        super().receive_data(data)

    def next_event(self) -> Event | NeedData:
        """The next event, or ``NEED_DATA``; raises the peer's fault after earlier events."""
        while True:
            if self._events:
                return self._deliver(self._events.popleft())
            self._raise_fault()
            if self._closed:
                return StreamClosed()
            if self._finished:
                return NEED_DATA
            if self._buf:
                self._parse_pending()
                continue
            if self._eof:
                self._closed = True
                return StreamClosed()
            return NEED_DATA

    # -- hooks -------------------------------------------------------------------------------

    def _room(self) -> int:
        return self._max_size + 1 - len(self._seen) - len(self._buf)

    def _deliver(self, event: Event) -> Event:
        """Last check before an event leaves; subclasses enforce ordering rules here."""
        return event

    def _check_open(self, event: StreamOpened, default_ns: str | None) -> None:
        """Refuse a stream header that is not an s2s one (subclasses may say more)."""
        if default_ns != SERVER_NS:
            self._fail(f"stream namespace {default_ns!r}, expected {SERVER_NS!r}")

    def _element_event(self, element: Element) -> Event | None:
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
        chunk = bytes(self._buf[:room])
        del self._buf[:room]
        self._seen += chunk
        try:
            self._parser.Parse(chunk, False)
        except _Stop:
            return
        except expat.ExpatError as exc:
            self._fail(self._expat_message(exc))
        except RemoteProtocolError:
            return  # already recorded by _fail inside a handler
        if self._buf:
            self._fail(f"more than {self._max_size} bytes before TLS (oversized or endless input)")

    def _expat_message(self, exc: expat.ExpatError) -> str:
        if not self._opened:
            return f"not an XMPP stream (received {snippet(self._seen)!r})"
        return f"malformed XML: {expat.ErrorString(exc.code)} at line {exc.lineno}"

    # -- expat handlers ------------------------------------------------------------------------

    def _on_doctype(self, *_args: object) -> None:
        self._fail("DOCTYPE is forbidden in XMPP (possible entity expansion attack)")

    def _on_entity_decl(self, *_args: object) -> None:
        self._fail("entity declarations are forbidden in XMPP")

    def _on_external_entity(self, *_args: object) -> int:
        self._fail("external entities are forbidden in XMPP")

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
        element = Element(qname, {_clark(k): v for k, v in attrs.items()},
                          self._parser.CurrentByteIndex)
        if self._stack:
            self._stack[-1].children.append(element)
        self._stack.append(element)

    def _open(self, qname: str, attrs: dict[str, str]) -> None:
        if qname != STREAM_TAG:
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

    def _finish(self, element: Element) -> None:
        """End of the phase: anything after the final element's ``>`` is injected."""
        start_tag_end = _tag_end(self._seen, element.start)
        if self._seen[start_tag_end - 2 : start_tag_end] == b"/>":
            end = start_tag_end
        else:
            end = _tag_end(self._seen, self._parser.CurrentByteIndex)
        if end < len(self._seen) or self._buf:
            self._events.pop()  # never hand out Proceed with bytes behind it
            self._fail(f"plaintext injection: bytes after <{element.name}> "
                       f"(received {snippet(self._seen[end:] + self._buf)!r})")
        self._finished = True
        raise _Stop

    def _on_text(self, data: str) -> None:
        if self._stack:
            self._stack[-1].text.append(data)


# --- the stream-level elements ---------------------------------------------------------------


def parse_features(element: Element) -> Features:
    """``<stream:features/>``: STARTTLS (and whether required), the SASL mechanisms, and the
    name of every child (dialback and others are judged by name)."""
    names = tuple(child.name for child in element.children)
    starttls = next((c for c in element.children if c.name == STARTTLS_TAG), None)
    required = starttls is not None and any(c.name == REQUIRED_TAG for c in starttls.children)
    mechanisms = tuple(
        "".join(m.text).strip().upper()
        for c in element.children if c.name == MECHANISMS_TAG
        for m in c.children if m.name == MECHANISM_TAG
    )
    return Features(starttls is not None, required, names, mechanisms)


def parse_stream_error(element: Element) -> StreamError:
    """``<stream:error/>``: its defined condition (RFC 6120 4.9.3) and text, if any."""
    condition = "undefined-condition"
    text: str | None = None
    for child in element.children:
        ns, _, local = child.name[1:].partition("}")
        if ns != STREAM_ERRORS_NS:
            continue  # application-specific conditions are extra detail, not the condition
        if child.name == ERROR_TEXT_TAG:
            text = "".join(child.text)
        else:
            condition = local
    return StreamError(condition, text)


# --- what we write ----------------------------------------------------------------------------------


def stream_header(*, to_domain: str | None = None, from_domain: str | None = None,
                  stream_id: str | None = None) -> bytes:
    """An s2s stream header; attribute values are XML-escaped (a domain is peer-influenced)."""
    attrs = [f"xmlns='{SERVER_NS}'", f"xmlns:stream='{STREAMS_NS}'", f"xmlns:db='{DIALBACK_NS}'"]
    for name, value in (("to", to_domain), ("from", from_domain), ("id", stream_id)):
        if value is not None:
            attrs.append(f"{name}='{escape_attr(value)}'")
    attrs.append("version='1.0'")
    return f"<?xml version='1.0'?><stream:stream {' '.join(attrs)}>".encode()


def stream_error_bytes(condition: str, text: str | None = None) -> bytes:
    body = f"<{condition} xmlns='{STREAM_ERRORS_NS}'/>"
    if text is not None:
        body += f"<text xmlns='{STREAM_ERRORS_NS}'>{escape_text(text)}</text>"
    return f"<stream:error>{body}</stream:error>".encode()


def escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(value: str) -> str:
    return escape_text(value).replace("'", "&apos;").replace('"', "&quot;")

