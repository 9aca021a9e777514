"""Lab partners that judge *our* certificate: the far side of an acceptance scan (issue 12).

Theory of this module
---------------------
* A partner Edge verifies the certificate we present the way OpenSSL-based servers do:
  ``CERT_REQUIRED`` against the CA it trusts, so an unknown CA or a missing intermediate ends
  the handshake with ``unknown_ca``, an expired certificate with ``certificate_expired`` and a
  serverAuth-only certificate with ``unsupported_certificate`` (OpenSSL's purpose check). In
  TLS 1.3 that alert comes after our Finished, in TLS 1.2 inside the handshake; one partner is
  capped at TLS 1.2 to show both.
* After TLS the partner speaks its protocol as a federating Edge would: SIP answers OPTIONS
  with 200 for domains it federates with and 403 with an ``ms-diagnostics`` header otherwise;
  XMPP restarts the stream and offers SASL EXTERNAL, which succeeds only when our certificate
  covers the stream ``from`` (XEP-0178), or (one partner) offers dialback only.
* Each situation is one lab domain, and :data:`ACCEPTANCE_CASES` says which of our
  certificates to present to which partner and what the scan must find. The partners' own
  certificates are issued at start-up by the corpus' intermediate (nothing new committed).
* Parsing goes through the same readers as the scanner (:mod:`scanner.sip`,
  :mod:`scanner.xmpp_auth`), bounded, under the listener's per-connection deadline.
"""

from __future__ import annotations

import functools
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scanner.findings import Status
from scanner.lab.hostile import _leaf_builder, _pem
from scanner.lab.listeners import MAX_READ, Behaviour
from scanner.lab.zones import CERTS, SIP, XMPP, LabDomain, Listener, Srv
from scanner.sip import Closed, Request, SipReader, response_bytes, uri_host
from scanner.sip import NeedData as SipNeedData
from scanner.xmpp import AuthRequested, StreamOpened, stream_header
from scanner.xmpp import NeedData as XmppNeedData
from scanner.xmpp_auth import EXTERNAL, SUCCESS_BYTES, XmppAuthServer

# Our Edge in the lab is contoso.test (test-certs/edge.pfx, password "fedscan").
OUR_DOMAIN: Final = "contoso.test"
MS_DIAGNOSTICS_FORBIDDEN: Final = (
    '1034;reason="Previous hop federated peer did not report diagnostic information";'
    'Domain="{domain}";PeerServer="{peer}";source="{source}"'
)


@dataclass(frozen=True)
class Partner:
    """One partner domain of the lab and how it judges us."""

    domain: str
    octet: int
    story: str
    sip_allowed: frozenset[str] | None  # None: no SIP listener
    xmpp: str | None  # "external" (SASL EXTERNAL and dialback), "dialback-only", None
    tls12_only: bool = False
    trusts: str = "ca-bundle.pem"  # the CA file (corpus) it verifies client certificates with
    no_cert_codes: tuple[str, ...] = ()  # what a scan without our certificate finds (sorted)
    require_cert: bool = True  # False: request one, as the lab's own Edge does (CERT_OPTIONAL)
    answer_all: bool = False  # SIP: 200 to every From domain


PARTNERS: Final = (
    Partner("relecloud.test", 30, "partner verifying client certificates (TLS 1.3, SIP and XMPP)",
            frozenset({OUR_DOMAIN, "fabrikam.test"}), "external",
            no_cert_codes=("client-certificate-required", "client-certificate-required",
                           "srv-missing")),
    Partner("woodgrove.test", 31, "partner that does not federate with contoso.test (SIP 403)",
            frozenset({"fabrikam.test"}), None,
            no_cert_codes=("client-certificate-required", "srv-fallback", "srv-missing")),
    Partner("lucerne.test", 32, "XMPP partner offering dialback only, never SASL EXTERNAL",
            frozenset({OUR_DOMAIN}), "dialback-only",
            no_cert_codes=("client-certificate-required", "client-certificate-required",
                           "srv-missing")),
    Partner("alpineskihouse.test", 33, "partner capped at TLS 1.2: the verdict comes inside "
            "the handshake", frozenset({OUR_DOMAIN}), None, tls12_only=True,
            no_cert_codes=("client-certificate-required", "srv-fallback", "srv-missing")),
    Partner("margiestravel.test", 34, "partner whose trust store lacks our CA (it rotated its "
            "roots)", frozenset({OUR_DOMAIN}), None, trusts="untrusted-root.pem",
            no_cert_codes=("client-certificate-required", "srv-fallback", "srv-missing")),
)


# The lab's healthy contoso/fabrikam Edge answers as a healthy Edge does: OPTIONS with 200, and
# SASL EXTERNAL to a peer whose verified certificate covers its stream 'from'.
OWN_EDGE: Final = Partner("contoso.test", 10, "the lab's own Edge", frozenset(), "external",
                          require_cert=False, answer_all=True)
OWN_EDGE_KEYS: Final = ("edge-sip", "edge-xmpp", "edge-xmpps")


@dataclass(frozen=True)
class AcceptanceCase:
    """Present ``cert`` (a corpus file) to ``domain``: the scan must find exactly ``codes``."""

    domain: str
    cert: str
    story: str
    status: Status
    codes: tuple[str, ...]  # sorted, with repeats
    key: str | None = None  # a separate key file (corpus), for --client-cert/--client-key
    extra: tuple[str, ...] = field(default=())

    def args(self, certs: Path = CERTS) -> list[str]:
        if self.key is not None:
            return ["--client-cert", str(certs / self.cert), "--client-key", str(certs / self.key),
                    *self.extra]
        password = ["--password", "fedscan"] if self.cert.endswith(".pfx") else []
        return ["--as-edge", str(certs / self.cert), *password, *self.extra]


_REJECTED = "client-certificate-rejected"
ACCEPTANCE_CASES: Final = (
    AcceptanceCase("relecloud.test", "edge.pfx", "our Edge certificate, accepted (SIP 200, "
                   "SASL EXTERNAL success)", Status.OK, ("srv-missing",)),
    AcceptanceCase("relecloud.test", "untrusted.pem", "a certificate from a CA the partner "
                   "does not trust: unknown_ca", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "srv-missing"), key="untrusted.key"),
    AcceptanceCase("relecloud.test", "leaf-only.pem", "our certificate without its "
                   "intermediate: unknown_ca", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "srv-missing"), key="leaf-only.key"),
    AcceptanceCase("relecloud.test", "expired.pem", "an expired certificate: "
                   "certificate_expired", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "srv-missing"), key="expired.key"),
    AcceptanceCase("relecloud.test", "serverauth-only.pem", "a serverAuth-only certificate "
                   "(a 2026 renewal): unsupported_certificate", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "client-certificate-no-client-auth", "srv-missing"),
                   key="serverauth-only.key"),
    AcceptanceCase("relecloud.test", "client.pem", "a certificate that does not cover our XMPP "
                   "domain: SASL EXTERNAL fails, dialback remains", Status.WARNING,
                   ("srv-missing", "xmpp-cert-auth-refused"), key="client.key",
                   extra=("--from-domain", OUR_DOMAIN)),
    AcceptanceCase("woodgrove.test", "edge.pfx", "TLS accepted, SIP OPTIONS refused with 403 "
                   "and ms-diagnostics", Status.CRITICAL,
                   ("sip-options-refused", "srv-fallback", "srv-missing")),
    AcceptanceCase("lucerne.test", "edge.pfx", "SASL EXTERNAL never offered; dialback only",
                   Status.WARNING, ("srv-missing", "xmpp-cert-auth-refused")),
    AcceptanceCase("alpineskihouse.test", "expired.pem", "TLS 1.2: certificate_expired inside "
                   "the handshake", Status.CRITICAL, (_REJECTED, "srv-fallback", "srv-missing"),
                   key="expired.key"),
    AcceptanceCase("alpineskihouse.test", "edge.pfx", "TLS 1.2 partner accepting our "
                   "certificate", Status.OK, ("srv-fallback", "srv-missing")),
    AcceptanceCase("margiestravel.test", "edge.pfx", "the partner's trust store lacks our CA: "
                   "unknown_ca", Status.CRITICAL, (_REJECTED, "srv-fallback", "srv-missing")),
)


# --- the partners' own certificates ------------------------------------------------------------

_LOCK = threading.Lock()
_TEMP: list[tempfile.TemporaryDirectory[str]] = []


@functools.cache
def _partner_pki() -> Path:
    tmp = tempfile.TemporaryDirectory(prefix="fedscan-partners-")
    _TEMP.append(tmp)  # removed at interpreter exit
    out = Path(tmp.name)
    inter = x509.load_pem_x509_certificate((CERTS / "intermediate.pem").read_bytes())
    inter_key = serialization.load_pem_private_key((CERTS / "intermediate.key").read_bytes(), None)
    key = serialization.load_pem_private_key((CERTS / "edge.key").read_bytes(), None)
    assert isinstance(inter_key, rsa.RSAPrivateKey) and isinstance(key, rsa.RSAPrivateKey)
    for serial, partner in enumerate(PARTNERS, start=0x3000):
        names = (f"sip.{partner.domain}", partner.domain)
        leaf = _leaf_builder(names, key, inter.subject, serial).sign(inter_key, hashes.SHA256())
        (out / f"{partner.domain}.pem").write_bytes(_pem(leaf, inter))
        (out / f"{partner.domain}.key").write_bytes((CERTS / "edge.key").read_bytes())
    return out


def partner_pki() -> Path:
    with _LOCK:
        return _partner_pki()


# --- behaviour -----------------------------------------------------------------------------------


class PartnerBehaviour(Behaviour):
    """A partner Edge's listener: requires and verifies our certificate, then speaks SIP or XMPP."""

    def __init__(self, partner: Partner, kind: str) -> None:
        self.partner = partner
        self.kind = kind  # "sip" | "xmpp"
        self.client_ca_file = CERTS / partner.trusts

    def configure_tls(self, ctx: ssl.SSLContext) -> None:
        if self.partner.require_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
        if self.partner.tls12_only:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def features(self, domain: str) -> bytes | None:
        return None  # before TLS: STARTTLS required, dialback (the default)

    async def after_tls(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        if self.kind == "sip":
            await self._sip(stream)
        else:
            await self._xmpp(stream)

    async def _sip(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        reader = SipReader()
        allowed = self.partner.sip_allowed or frozenset()
        while True:
            event = reader.next_event()
            if isinstance(event, SipNeedData):
                reader.receive_data(bytes(await stream.receive_some(MAX_READ)))
                continue
            if isinstance(event, Closed) or not isinstance(event, Request):
                return
            if event.method != "OPTIONS":
                await stream.send_all(response_bytes(event, 501, "Not Implemented", tag="lab"))
                continue
            domain = uri_host(event.header("from") or "")
            if domain in allowed or self.partner.answer_all:
                await stream.send_all(response_bytes(event, 200, "OK", tag="lab", extra=(
                    ("Allow", "INVITE, ACK, CANCEL, OPTIONS, BYE, MESSAGE, SUBSCRIBE, NOTIFY"),)))
                continue
            source = f"sip.{self.partner.domain}"
            diag = MS_DIAGNOSTICS_FORBIDDEN.format(domain=domain, peer=source, source=source)
            await stream.send_all(response_bytes(event, 403, "Forbidden", tag="lab",
                                                 extra=(("ms-diagnostics", diag),)))

    async def _xmpp(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        reader = XmppAuthServer()
        opened = await _next(stream, reader)
        if not isinstance(opened, StreamOpened):
            return
        # EXTERNAL is offered to a peer whose certificate was verified (as prosody does)
        external = self.partner.xmpp == "external" and bool(stream.getpeercert())
        await stream.send_all(stream_header(from_domain=self.partner.domain, stream_id="lab-auth")
                              + XmppAuthServer.features(external=external, dialback=True))
        if not external:
            await stream.receive_some(MAX_READ)  # a dialback key would come: not ours to play
            return
        auth = await _next(stream, reader)
        if not isinstance(auth, AuthRequested) or auth.mechanism != EXTERNAL:
            return
        covered = _cert_names(stream)
        if opened.from_domain is not None and opened.from_domain in covered:
            await stream.send_all(SUCCESS_BYTES)
        else:
            await stream.send_all(XmppAuthServer.failure(
                "not-authorized", f"the certificate does not cover {opened.from_domain}"))
        await stream.receive_some(MAX_READ)


async def _next(stream: trio.abc.Stream, reader: XmppAuthServer) -> object:
    while True:
        event = reader.next_event()
        if not isinstance(event, XmppNeedData):
            return event
        reader.receive_data(bytes(await stream.receive_some(MAX_READ)))


def _cert_names(stream: trio.SSLStream[trio.abc.Stream]) -> set[str]:
    """The DNS names of our (verified) certificate, as the partner's TLS stack saw it."""
    cert = stream.getpeercert()
    return {value.lower() for kind, value in (cert or {}).get("subjectAltName", ())
            if kind == "DNS" and isinstance(value, str)}


# --- the world's part ---------------------------------------------------------------------------


def partner_listeners() -> tuple[Listener, ...]:
    pki = partner_pki()
    out: list[Listener] = []
    for p in PARTNERS:
        cert = str(pki / p.domain)
        if p.sip_allowed is not None:
            out.append(Listener(f"{p.domain}-sip", "sip", p.octet, cert))
        if p.xmpp is not None:
            out.append(Listener(f"{p.domain}-xmpp", "xmpp", p.octet, cert, (p.domain,)))
    return tuple(out)


def partner_behaviours() -> dict[str, Behaviour]:
    out: dict[str, Behaviour] = {key: PartnerBehaviour(OWN_EDGE, key.rpartition("-")[2][:4])
                                 for key in OWN_EDGE_KEYS}
    for p in PARTNERS:
        out[f"{p.domain}-sip"] = PartnerBehaviour(p, "sip")
        out[f"{p.domain}-xmpp"] = PartnerBehaviour(p, "xmpp")
    return out


def partner_srv() -> tuple[Srv, ...]:
    out: list[Srv] = []
    for p in PARTNERS:
        if p.sip_allowed is not None:
            out.append(Srv(SIP + p.domain, f"sip.{p.domain}", f"{p.domain}-sip"))
        if p.xmpp is not None:
            out.append(Srv(XMPP + p.domain, f"sip.{p.domain}", f"{p.domain}-xmpp"))
    return tuple(out)


def partner_hosts() -> dict[str, tuple[int, ...]]:
    return {f"sip.{p.domain}": (p.octet,) for p in PARTNERS}


def partner_domains() -> tuple[LabDomain, ...]:
    return tuple(LabDomain(p.domain, p.story, Status.WARNING, p.no_cert_codes) for p in PARTNERS)
