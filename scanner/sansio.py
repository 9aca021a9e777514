"""What every sans-I/O reader of peer bytes shares (:mod:`scanner.xmpp`, :mod:`scanner.sip`).

Theory of this module
---------------------
A reader eats bytes (``receive_data``) and yields events (``next_event``), in the manner of
h11; this module holds the parts that are the same for every protocol, so they are written
(and judged) once:

* One "need more data" sentinel, :data:`NEED_DATA`: a value, not an exception, so a caller's
  loop reads ``if event is NEED_DATA: receive more``. It is the same object for every reader.
* Two error kinds: :class:`RemoteProtocolError` when the peer broke the protocol (malformed,
  hostile, oversized or out-of-order input: a finding), :class:`LocalProtocolError` when the
  caller used a reader out of order (a bug in fedscan). ``str(error)`` is fit for a report.
* :class:`BoundedReader`, the base of a reader: the received bytes it has not parsed yet
  (never more than the reader's own bound: :meth:`BoundedReader._room`), the peer's end of
  file, and the first peer fault, which every later call raises again (a broken reader never
  yields an event after its fault).
"""

from __future__ import annotations

from typing import Final, NoReturn

SNIPPET: Final = 40  # bytes of peer input quoted in an error message


class ProtocolError(Exception):
    """Base of both error kinds; ``str(error)`` is a message fit for a report."""


class LocalProtocolError(ProtocolError):
    """We used a reader out of order (a bug in the caller, not the peer's fault)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: malformed, hostile, oversized or out-of-order input."""


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


def snippet(data: bytes | bytearray) -> bytes:
    """The start of some peer input, to quote in an error message (never the whole of it)."""
    return bytes(data[:SNIPPET])


class BoundedReader:
    """Base of a reader: unparsed bytes (``_buf``), the peer's EOF, and a sticky peer fault.

    Subclasses bound what is held (:meth:`_room`, :meth:`_check_bounds`), parse ``_buf`` in
    their ``next_event`` and report a peer fault with :meth:`_fail`.
    """

    def __init__(self) -> None:
        self._buf = bytearray()  # received, not yet parsed
        self._eof = False
        self._error: RemoteProtocolError | None = None

    def receive_data(self, data: bytes) -> None:
        """Buffer peer bytes; ``b""`` means the peer closed the connection."""
        self._raise_fault()
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data after end of file")
        room = self._room()
        self._buf += data if room is None else data[: max(room, 0)]
        self._check_bounds()

    def _room(self) -> int | None:
        """How many more bytes may be held (None: all); what is beyond is dropped, for the
        peer is at fault by then. By default all is held and :meth:`_check_bounds` judges."""
        return None

    def _check_bounds(self) -> None:
        """Called after bytes were buffered: :meth:`_fail` when the peer went over a bound."""

    def _raise_fault(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, message: str) -> NoReturn:
        """Record and raise a peer fault; every later call raises it again."""
        self._error = RemoteProtocolError(message)
        raise self._error
