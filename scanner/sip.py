"""Sans-I/O SIP over a stream transport (RFC 3261 sections 7 and 18.3): read messages, build
the OPTIONS a federating Edge sends, and the responses the lab answers with.

Theory of this module
---------------------
A partner's SIP answer is peer input, so this module owns no socket and no clock, in the
manner of h11 and :mod:`scanner.xmpp`: :meth:`SipReader.receive_data` eats bytes,
:meth:`SipReader.next_event` yields whole messages. The rules it keeps:

* Framing is by ``Content-Length`` alone (RFC 3261 18.3: mandatory on stream transports); a
  message without one is a protocol error, never a read "until the peer closes".
* Bounded. A start line plus headers may take at most ``max_head`` bytes, a body at most
  ``max_body``; beyond that the peer is at fault. Nothing more than one message's worth is
  ever buffered.
* Events depend on the bytes, never on how they were chunked: a message is returned only when
  it is complete, and parsing is lazy (in :meth:`next_event`), so a peer's fault surfaces
  after the messages that preceded it.
* Tolerant where RFC 3261 asks to be: CRLF keep-alives between messages (RFC 5626 4.4.1) are
  skipped, bare LF line ends are accepted, folded header lines are unfolded, compact header
  names (``l``, ``f``, ``i``...) are expanded, header names compare case-insensitively.
* Peer faults are :class:`RemoteProtocolError`; once raised, the reader stays broken. The
  sentinel, the error kinds and that rule are :mod:`scanner.sansio`'s, shared with XMPP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from scanner.sansio import NEED_DATA as NEED_DATA
from scanner.sansio import SNIPPET, BoundedReader, snippet
from scanner.sansio import NeedData as NeedData
from scanner.sansio import RemoteProtocolError as RemoteProtocolError

DEFAULT_MAX_HEAD: Final = 16384
DEFAULT_MAX_BODY: Final = 65536
SIP_VERSION: Final = "SIP/2.0"
BRANCH_MAGIC: Final = "z9hG4bK"  # RFC 3261 8.1.1.7: marks an RFC 3261 branch

# RFC 3261 7.3.3 compact forms, plus RFC 3515/3903/4028 ones peers use.
_COMPACT: Final = {
    "c": "content-type", "e": "content-encoding", "f": "from", "i": "call-id",
    "k": "supported", "l": "content-length", "m": "contact", "s": "subject", "t": "to",
    "v": "via", "o": "event", "r": "refer-to", "u": "allow-events", "x": "session-expires",
}
_STATUS_LINE: Final = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ?(.*)")
_REQUEST_LINE: Final = re.compile(r"([A-Za-z]+) (\S+) SIP/2\.0")
_TOKEN: Final = re.compile(r"[!%'*+\-.0-9A-Z^_`a-z|~]+")


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Message:
    headers: tuple[tuple[str, str], ...]  # (lower-case full name, value), in received order
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header (full or compact name, any case), or None."""
        wanted = _canonical(name)
        return next((v for n, v in self.headers if n == wanted), None)

    def headers_named(self, name: str) -> tuple[str, ...]:
        wanted = _canonical(name)
        return tuple(v for n, v in self.headers if n == wanted)


@dataclass(frozen=True)
class Response(_Message):
    status: int
    reason: str

    @property
    def final(self) -> bool:
        return self.status >= 200


@dataclass(frozen=True)
class Request(_Message):
    method: str
    uri: str


@dataclass(frozen=True)
class Closed:
    """The peer closed the connection between messages."""


Event = Response | Request | Closed


# --- the reader --------------------------------------------------------------------------------


class SipReader(BoundedReader):
    """Incremental, bounded reader of the SIP messages one peer sends on a stream."""

    def __init__(self, *, max_head: int = DEFAULT_MAX_HEAD, max_body: int = DEFAULT_MAX_BODY) -> None:
        if max_head <= 0 or max_body < 0:
            raise ValueError("max_head must be positive and max_body not negative")
        super().__init__()
        self._max_head = max_head
        self._max_body = max_body
        self._head: tuple[str, tuple[tuple[str, str], ...], int] | None = None  # line, headers, length

    def _check_bounds(self) -> None:
        if self._head is None and len(self._buf) > self._max_head + 4 and self._head_end() is None:
            self._fail(f"more than {self._max_head} bytes of start line and headers")

    def next_event(self) -> Event | NeedData:
        """The next complete message, ``Closed``, or ``NEED_DATA``."""
        self._raise_fault()
        if self._head is None:
            self._skip_keepalives()
            end = self._head_end()
            if end is None:
                if len(self._buf) > self._max_head:
                    self._fail(f"more than {self._max_head} bytes of start line and headers")
                if self._eof:
                    if self._buf:
                        self._fail(f"connection closed inside a message (received "
                                   f"{snippet(self._buf)!r})")
                    return Closed()
                return NEED_DATA
            head_end, body_start = end
            if head_end > self._max_head:
                self._fail(f"more than {self._max_head} bytes of start line and headers")
            self._head = self._parse_head(bytes(self._buf[:head_end]))
            del self._buf[:body_start]
        line, headers, length = self._head
        if len(self._buf) < length:
            if self._eof:
                self._fail(f"connection closed after {len(self._buf)} of {length} body bytes")
            return NEED_DATA
        body = bytes(self._buf[:length])
        del self._buf[:length]
        self._head = None
        return _event(line, headers, body)

    # -- internals --------------------------------------------------------------------------------

    def _skip_keepalives(self) -> None:
        i = 0
        while i < len(self._buf) and self._buf[i] in (0x0D, 0x0A):
            i += 1
        if i:
            del self._buf[:i]

    def _head_end(self) -> tuple[int, int] | None:
        """(end of the headers, start of the body): the first empty line, CRLF or bare LF."""
        crlf = self._buf.find(b"\r\n\r\n")
        lf = self._buf.find(b"\n\n")
        found = [(crlf, crlf + 4)] if crlf >= 0 else []
        if lf >= 0:
            found.append((lf, lf + 2))
        return min(found) if found else None

    def _parse_head(self, raw: bytes) -> tuple[str, tuple[tuple[str, str], ...], int]:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(f"not SIP: the start line and headers are not UTF-8 "
                       f"(received {snippet(raw)!r})")
        lines = text.replace("\r\n", "\n").split("\n")
        start = lines[0]
        if not (_STATUS_LINE.fullmatch(start) or _REQUEST_LINE.fullmatch(start)):
            self._fail(f"not SIP: unexpected start line (received {snippet(raw)!r})")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t"):  # folded continuation of the previous header
                if not headers:
                    self._fail("a folded header line before any header")
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, sep, value = line.partition(":")
            name = name.strip()
            if not sep or not _TOKEN.fullmatch(name):
                self._fail(f"malformed header line {line[:SNIPPET]!r}")
            headers.append((_canonical(name), value.strip()))
        lengths = {v for n, v in headers if n == "content-length"}
        if not lengths:
            self._fail("a message without Content-Length (mandatory over TCP/TLS, RFC 3261 18.3)")
        if len(lengths) > 1:
            self._fail(f"conflicting Content-Length headers {sorted(lengths)}")
        value = lengths.pop()
        if not value.isdigit() or len(value) > 9:
            self._fail(f"invalid Content-Length {value[:SNIPPET]!r}")
        length = int(value)
        if length > self._max_body:
            self._fail(f"a body of {length} bytes exceeds the {self._max_body}-byte limit")
        return start, tuple(headers), length


def _event(line: str, headers: tuple[tuple[str, str], ...], body: bytes) -> Event:
    status = _STATUS_LINE.fullmatch(line)
    if status is not None:
        return Response(headers, body, int(status.group(1)), status.group(2).strip())
    request = _REQUEST_LINE.fullmatch(line)
    assert request is not None  # checked in _parse_head
    return Request(headers, body, request.group(1).upper(), request.group(2))


def _canonical(name: str) -> str:
    lower = name.strip().lower()
    return _COMPACT.get(lower, lower)


# --- values peers send -------------------------------------------------------------------------


@dataclass(frozen=True)
class MsDiagnostics:
    """A Microsoft ``ms-diagnostics`` (or ``ms-diagnostics-public``) header:
    ``1034;reason="Previous hop ... ";source="sip.contoso.com"``. Lync and Skype for Business
    admins look the code up; the reason and the server that said it come with it."""

    code: int | None
    reason: str | None
    source: str | None
    raw: str

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "reason": self.reason, "source": self.source}


_PARAM: Final = re.compile(r'\s*;\s*([^=;\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;]*))?')


def parse_ms_diagnostics(value: str) -> MsDiagnostics:
    """Parse leniently: a malformed header still yields what could be read (and ``raw``)."""
    head, _, rest = value.partition(";")
    code_text = head.strip()
    code = int(code_text) if code_text.isdigit() and len(code_text) < 10 else None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest if rest else ""):
        raw = (match.group(2) or "").strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(match.group(1).lower(), raw)
    return MsDiagnostics(code, params.get("reason"), params.get("source"), value)


_URI_HOST: Final = re.compile(r"sips?:(?:[^@<>;\s]*@)?(\[[0-9A-Fa-f:.]+\]|[^;:>\s?]+)", re.IGNORECASE)


def uri_host(value: str) -> str | None:
    """The host of the SIP URI in a From/To/Contact value (``"A" <sip:a@b.test>;tag=1``)."""
    match = _URI_HOST.search(value)
    return match.group(1).lower().rstrip(".") if match else None


# --- messages we build ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionsRequest:
    """The OPTIONS a federating Edge sends to probe a peer (RFC 3261 11), as bytes plus the
    values a response must echo."""

    data: bytes
    call_id: str
    branch: str


def options_request(*, target: str, from_domain: str, local_host: str, local_port: int,
                    call_id: str, tag: str, branch: str, user_agent: str) -> OptionsRequest:
    """An OPTIONS request over TLS. Randomness (Call-ID, tag, branch) is the caller's: this
    module reads no clock and no entropy, so its output is a pure function of its input."""
    if not branch.startswith(BRANCH_MAGIC):
        branch = BRANCH_MAGIC + branch
    host = f"[{local_host}]" if ":" in local_host else local_host
    lines = [
        f"OPTIONS sip:{target} SIP/2.0",
        f"Via: SIP/2.0/TLS {host}:{local_port};branch={branch}",
        "Max-Forwards: 70",
        f"From: <sip:{from_domain}>;tag={tag}",
        f"To: <sip:{target}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:{from_domain};transport=tls>",
        "Accept: application/sdp",
        f"User-Agent: {user_agent}",
        "Content-Length: 0",
        "",
        "",
    ]
    return OptionsRequest("\r\n".join(lines).encode(), call_id, branch)


def response_bytes(request: Request, status: int, reason: str, *, tag: str,
                   extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A response to ``request`` (RFC 3261 8.2.6): Via, From, Call-ID, CSeq echoed, To tagged."""
    lines = [f"{SIP_VERSION} {status} {reason}"]
    lines += [f"Via: {v}" for v in request.headers_named("via")]
    for name in ("From", "Call-ID", "CSeq"):
        value = request.header(name)
        if value is not None:
            lines.append(f"{name}: {value}")
    to = request.header("to") or ""
    lines.append(f"To: {to}" if ";tag=" in to else f"To: {to};tag={tag}")
    lines += [f"{n}: {v}" for n, v in extra]
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()
