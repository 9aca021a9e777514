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
* The same hardened, bounded, chunking-independent reader as :mod:`scanner.xmpp`
  (:class:`scanner.xmpp_stream.StreamReader`): no DTD, no comments, at most ``max_size``
  bytes. There is no plaintext-injection rule here: everything is inside TLS.
* Dialback is not performed. Whether it is offered (``urn:xmpp:features:dialback``) only
  changes how bad a refused certificate is: with dialback, federation may still work.
* :class:`XmppAuthServer` is the receiving side, for the lab's partner listeners.
"""

from __future__ import annotations

from typing import Final

from scanner.sansio import LocalProtocolError
from scanner.xmpp_events import (
    DIALBACK_FEATURE_NS,
    ERROR_TAG,
    FEATURES_TAG,
    SASL_NS,
    AuthRequested,
    Event,
    Features,
    SaslFailure,
    SaslSuccess,
)
from scanner.xmpp_stream import (
    DEFAULT_MAX_SIZE,
    Element,
    StreamReader,
    escape_text,
    parse_features,
    parse_stream_error,
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


def _sasl_failure(element: Element) -> SaslFailure:
    condition = "undefined-condition"
    text: str | None = None
    for child in element.children:
        if child.name == _TEXT:
            text = "".join(child.text)
        elif child.name.startswith(f"{{{SASL_NS}}}"):
            condition = child.name.partition("}")[2]
    return SaslFailure(condition, text)


class XmppAuthNegotiator(StreamReader):
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

    def _element_event(self, element: Element) -> Event | None:
        if element.name == FEATURES_TAG:
            return parse_features(element)
        if element.name == ERROR_TAG:
            return parse_stream_error(element)
        if element.name == _SUCCESS:
            return SaslSuccess()
        if element.name == _FAILURE:
            return _sasl_failure(element)
        return None

    def _deliver(self, event: Event) -> Event:
        if isinstance(event, Features):
            self._external_offered = EXTERNAL in event.mechanisms
        elif isinstance(event, SaslSuccess | SaslFailure) and not self._auth_sent:
            self._fail("unsolicited SASL outcome before <auth/>")
        return event


class XmppAuthServer(StreamReader):
    """The receiving server after TLS (the lab): reads the restarted header and ``<auth/>``."""

    def _element_event(self, element: Element) -> Event | None:
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
            inner += f"<text>{escape_text(text)}</text>"
        return f"<failure xmlns='{SASL_NS}'>{inner}</failure>".encode()
