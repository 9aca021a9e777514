"""Sans-I/O XMPP s2s authentication after TLS: the restarted stream and SASL EXTERNAL
(RFC 6120 sections 4.3.3 and 6, XEP-0178), both sides.

Theory of this module
---------------------
* After TLS the initiating server restarts the stream (a new header, RFC 6120 5.4.3.3) and
  the receiving server answers with new features. A server that trusts our certificate for
  our domain offers the SASL mechanism EXTERNAL; we authenticate with it
  (``<auth mechanism='EXTERNAL'>=</auth>``: the authorization identity is the stream's
  ``from``) and read ``<success/>`` or ``<failure/>``. That answer is the partner's verdict on
  our certificate, which is the whole point of an acceptance scan.
* The same hardened, bounded, chunking-independent reader as :mod:`scanner.xmpp` (it is a
  subclass of its reader): no DTD, no comments, at most ``max_size`` bytes. There is no
  plaintext-injection rule here: everything is inside TLS.
* Dialback is not performed. Whether it is offered (``urn:xmpp:features:dialback``) only
  changes how bad a refused certificate is: with dialback, federation may still work.
* :class:`XmppAuthServer` is the receiving side, for the lab's partner listeners.
"""

from __future__ import annotations

from typing import Final

from scanner.xmpp import (
    _ERROR,
    _FEATURES,
    DEFAULT_MAX_SIZE,
    DIALBACK_FEATURE_NS,
    SASL_NS,
    SERVER_NS,
    AuthRequested,
    Event,
    Features,
    LocalProtocolError,
    RemoteProtocolError,
    SaslFailure,
    SaslSuccess,
    StreamOpened,
    _Element,
    _features,
    _stream_error,
    _StreamReader,
    stream_header,
)

EXTERNAL: Final = "EXTERNAL"
DIALBACK_FEATURE: Final = f"{{{DIALBACK_FEATURE_NS}}}dialback"
_SUCCESS: Final = f"{{{SASL_NS}}}success"
_FAILURE: Final = f"{{{SASL_NS}}}failure"
_AUTH: Final = f"{{{SASL_NS}}}auth"
_TEXT: Final = f"{{{SASL_NS}}}text"

AUTH_EXTERNAL_BYTES: Final = f"<auth xmlns='{SASL_NS}' mechanism='{EXTERNAL}'>=</auth>".encode()
SUCCESS_BYTES: Final = f"<success xmlns='{SASL_NS}'/>".encode()


def offers_dialback(features: Features) -> bool:
    return DIALBACK_FEATURE in features.names


def _sasl_failure(element: _Element) -> SaslFailure:
    condition = "undefined-condition"
    text: str | None = None
    for child in element.children:
        if child.name == _TEXT:
            text = "".join(child.text)
        elif child.name.startswith(f"{{{SASL_NS}}}"):
            condition = child.name.partition("}")[2]
    return SaslFailure(condition, text)


class XmppAuthNegotiator(_StreamReader):
    """The initiating server after TLS: :meth:`initiate`, read :class:`Features`, then
    :meth:`auth_external` when EXTERNAL is offered, and read :class:`SaslSuccess` or
    :class:`SaslFailure` (or a :class:`StreamError` about us)."""

    def __init__(self, to_domain: str, from_domain: str, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        super().__init__(max_size=max_size)
        self.to_domain = to_domain
        self.from_domain = from_domain
        self._initiated = False
        self._external_offered = False
        self._auth_sent = False

    def initiate(self) -> bytes:
        """The restarted stream's header (``from`` is required for SASL EXTERNAL)."""
        if self._initiated:
            raise LocalProtocolError("stream already initiated")
        self._initiated = True
        return stream_header(to_domain=self.to_domain, from_domain=self.from_domain)

    def auth_external(self) -> bytes:
        if not self._external_offered:
            raise LocalProtocolError("auth_external() before features offering EXTERNAL")
        if self._auth_sent:
            raise LocalProtocolError("auth_external() called twice")
        self._auth_sent = True
        return AUTH_EXTERNAL_BYTES

    def _check_open(self, event: StreamOpened, default_ns: str | None) -> None:
        if default_ns != SERVER_NS:
            self._fail(f"stream namespace {default_ns!r}, expected {SERVER_NS!r}")

    def _element_event(self, element: _Element) -> Event | None:
        if element.name == _FEATURES:
            return _features(element)
        if element.name == _ERROR:
            return _stream_error(element)
        if element.name == _SUCCESS:
            return SaslSuccess()
        if element.name == _FAILURE:
            return _sasl_failure(element)
        return None

    def _deliver(self, event: Event) -> Event:
        if isinstance(event, Features):
            self._external_offered = EXTERNAL in event.mechanisms
        elif isinstance(event, SaslSuccess | SaslFailure) and not self._auth_sent:
            self._error = RemoteProtocolError("unsolicited SASL outcome before <auth/>")
            raise self._error
        return event


class XmppAuthServer(_StreamReader):
    """The receiving server after TLS (the lab): reads the restarted header and ``<auth/>``."""

    def _check_open(self, event: StreamOpened, default_ns: str | None) -> None:
        if default_ns != SERVER_NS:
            self._fail(f"stream namespace {default_ns!r}, expected {SERVER_NS!r}")

    def _element_event(self, element: _Element) -> Event | None:
        if element.name == _AUTH:
            return AuthRequested(element.attrs.get("mechanism", ""), "".join(element.text).strip())
        return None

    @staticmethod
    def features(*, external: bool, dialback: bool) -> bytes:
        body = ""
        if external:
            body += f"<mechanisms xmlns='{SASL_NS}'><mechanism>{EXTERNAL}</mechanism></mechanisms>"
        if dialback:
            body += f"<dialback xmlns='{DIALBACK_FEATURE_NS}'><errors/></dialback>"
        return f"<stream:features>{body}</stream:features>".encode()

    @staticmethod
    def failure(condition: str = "not-authorized", text: str | None = None) -> bytes:
        inner = f"<{condition}/>"
        if text is not None:
            escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            inner += f"<text>{escaped}</text>"
        return f"<failure xmlns='{SASL_NS}'>{inner}</failure>".encode()
