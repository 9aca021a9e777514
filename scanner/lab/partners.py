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

import datetime as dt
import os
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
from cryptography.hazmat.primitives.serialization import pkcs12

from scanner.findings import Status
from scanner.lab.certfactory import key_pem, leaf_builder, make_ca, new_key, serial_of
from scanner.lab.listeners import MAX_READ, Behaviour
from scanner.lab.pki import CONTOSO_EDGE_SAN, LabPki
from scanner.lab.zones import SIP, XMPP, LabDomain, Listener, Srv
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
    trusts_lab_ca: bool = True  # False: it trusts another CA only (its store lacks ours)
    no_cert_codes: tuple[str, ...] = ()  # what a scan without our certificate finds (sorted)
    require_cert: bool = True  # False: request one, as the lab's own Edge does (CERT_OPTIONAL)
    answer_all: bool = False  # SIP: 200 to every From domain


PARTNERS: Final = (
    Partner("adventureworks.test", 30, "partner verifying client certificates (TLS 1.3, SIP and XMPP)",
            frozenset({OUR_DOMAIN, "fabrikam.test"}), "external",
            no_cert_codes=("client-certificate-required", "client-certificate-required",
                           "srv-missing")),
    Partner("wideworldimporters.test", 31, "partner that does not federate with contoso.test (SIP 403)",
            frozenset({"fabrikam.test"}), None,
            no_cert_codes=("client-certificate-required", "srv-fallback", "srv-missing")),
    Partner("blueyonder.test", 32, "XMPP partner offering dialback only, never SASL EXTERNAL",
            frozenset({OUR_DOMAIN}), "dialback-only",
            no_cert_codes=("client-certificate-required", "client-certificate-required",
                           "srv-missing")),
    Partner("humongous.test", 33, "partner capped at TLS 1.2: the verdict comes inside "
            "the handshake", frozenset({OUR_DOMAIN}), None, tls12_only=True,
            no_cert_codes=("client-certificate-required", "srv-fallback", "srv-missing")),
    Partner("margiestravel.test", 34, "partner whose trust store lacks our CA (it rotated its "
            "roots)", frozenset({OUR_DOMAIN}), None, trusts_lab_ca=False,
            no_cert_codes=("client-certificate-required", "srv-fallback", "srv-missing")),
)


# The lab's healthy contoso/fabrikam Edge answers as a healthy Edge does: OPTIONS with 200, and
# SASL EXTERNAL to a peer whose verified certificate covers its stream 'from'.
OWN_EDGE: Final = Partner("contoso.test", 10, "the lab's own Edge", frozenset(), "external",
                          require_cert=False, answer_all=True)
OWN_EDGE_KEYS: Final = ("edge-sip", "edge-xmpp", "edge-xmpps")


@dataclass(frozen=True)
class AcceptanceFiles:
    """Our certificate in the forms an administrator hands fedscan, made from the lab's PKI:
    the Edge as a PFX (password ``fedscan``) and as one PEM with key and chain, the leaf without
    its intermediate, and a certificate from a CA the lab does not trust (with that CA)."""

    pki: LabPki
    dir: Path

    @property
    def pfx(self) -> Path:
        return self.dir / "edge.pfx"

    def present(self, what: str) -> tuple[Path, Path | None]:
        """(certificate, key) for a case's ``present``; the key is None when the file has it."""
        if what in ("edge.pfx", "edge-with-key.pem"):
            return self.dir / what, None
        if what in ("untrusted", "leaf-only"):
            return self.dir / f"{what}.pem", self.dir / f"{what}.key"
        stem = {"expired": "lab/edge-expired", "serverauth-only": "lab/edge-serverauth-only",
                "client": "client", "edge": "edge"}[what]
        return self.pki.chain(stem), self.pki.key(stem)


@dataclass(frozen=True)
class AcceptanceCase:
    """Present ``present`` (see :meth:`AcceptanceFiles.present`) to ``domain``: the scan must
    find exactly ``codes``."""

    domain: str
    present: str
    story: str
    status: Status
    codes: tuple[str, ...]  # sorted, with repeats
    extra: tuple[str, ...] = field(default=())

    def args(self, files: AcceptanceFiles) -> list[str]:
        cert, key = files.present(self.present)
        if key is not None:
            return ["--client-cert", str(cert), "--client-key", str(key), *self.extra]
        password = ["--password", PFX_PASSWORD] if cert.suffix == ".pfx" else []
        return ["--as-edge", str(cert), *password, *self.extra]


PFX_PASSWORD: Final = "fedscan"
_REJECTED = "client-certificate-rejected"
ACCEPTANCE_CASES: Final = (
    AcceptanceCase("adventureworks.test", "edge.pfx", "our Edge certificate, accepted (SIP 200, "
                   "SASL EXTERNAL success)", Status.OK, ("srv-missing",)),
    AcceptanceCase("adventureworks.test", "untrusted", "a certificate from a CA the partner "
                   "does not trust: unknown_ca", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "srv-missing")),
    AcceptanceCase("adventureworks.test", "leaf-only", "our certificate without its "
                   "intermediate: unknown_ca", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "srv-missing")),
    AcceptanceCase("adventureworks.test", "expired", "an expired certificate: "
                   "certificate_expired", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "srv-missing")),
    AcceptanceCase("adventureworks.test", "serverauth-only", "a serverAuth-only certificate "
                   "(a 2026 renewal): unsupported_certificate", Status.CRITICAL,
                   (_REJECTED, _REJECTED, "client-certificate-no-client-auth", "srv-missing")),
    AcceptanceCase("adventureworks.test", "client", "a certificate that does not cover our XMPP "
                   "domain: SASL EXTERNAL fails, dialback remains", Status.WARNING,
                   ("srv-missing", "xmpp-cert-auth-refused"), extra=("--from-domain", OUR_DOMAIN)),
    AcceptanceCase("wideworldimporters.test", "edge.pfx", "TLS accepted, SIP OPTIONS refused with 403 "
                   "and ms-diagnostics", Status.CRITICAL,
                   ("sip-options-refused", "srv-fallback", "srv-missing")),
    AcceptanceCase("blueyonder.test", "edge.pfx", "SASL EXTERNAL never offered; dialback only",
                   Status.WARNING, ("srv-missing", "xmpp-cert-auth-refused")),
    AcceptanceCase("humongous.test", "expired", "TLS 1.2: certificate_expired inside "
                   "the handshake", Status.CRITICAL, (_REJECTED, "srv-fallback", "srv-missing")),
    AcceptanceCase("humongous.test", "edge.pfx", "TLS 1.2 partner accepting our "
                   "certificate", Status.OK, ("srv-fallback", "srv-missing")),
    AcceptanceCase("margiestravel.test", "edge.pfx", "the partner's trust store lacks our CA: "
                   "unknown_ca", Status.CRITICAL, (_REJECTED, "srv-fallback", "srv-missing")),
)


# --- our certificate's files, made from the lab's PKI ------------------------------------------

_LOCK = threading.Lock()
_FILES: Final = ("edge.pfx", "edge-with-key.pem", "leaf-only.pem", "leaf-only.key",
                 "untrusted.pem", "untrusted.key", "untrusted-root.pem")


def acceptance_files(pki: LabPki) -> AcceptanceFiles:
    """Made once per lab PKI, beside it (``<pki>/acceptance/``); each file appears atomically,
    so processes that start at once never see half a file."""
    out = pki.dir / "acceptance"
    with _LOCK:
        if not all((out / name).is_file() for name in _FILES):
            _make(pki, out)
    return AcceptanceFiles(pki, out)


def _make(pki: LabPki, out: Path) -> None:
    out.mkdir(mode=0o700, exist_ok=True)
    key_bytes = pki.key("edge").read_bytes()
    key = serialization.load_pem_private_key(key_bytes, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    leaf, *intermediates = x509.load_pem_x509_certificates(pki.chain("edge").read_bytes())
    pfx = pkcs12.serialize_key_and_certificates(
        b"contoso edge", key, leaf, intermediates,
        serialization.BestAvailableEncryption(PFX_PASSWORD.encode()))
    now = dt.datetime.now(dt.UTC)
    root = make_ca("Fedscan Lab Untrusted Root CA", now + dt.timedelta(days=3653))
    other_key = new_key()
    other = leaf_builder(CONTOSO_EDGE_SAN, other_key.public_key(), root.cert,
                         serial=serial_of("untrusted"), not_before=now - dt.timedelta(days=1),
                         not_after=now + dt.timedelta(days=3650), org="Contoso Test",
                         ).sign(root.key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    files = {
        "edge.pfx": pfx,
        "edge-with-key.pem": key_bytes + pki.chain("edge").read_bytes(),
        "leaf-only.pem": leaf.public_bytes(pem),
        "leaf-only.key": key_bytes,
        "untrusted.pem": other.public_bytes(pem) + root.pem,
        "untrusted.key": key_pem(other_key),
        "untrusted-root.pem": root.pem,
    }
    for name, data in files.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=out)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        Path(tmp).replace(out / name)


# --- behaviour -----------------------------------------------------------------------------------


class PartnerBehaviour(Behaviour):
    """A partner Edge's listener: requires and verifies our certificate, then speaks SIP or XMPP."""

    def __init__(self, partner: Partner, kind: str) -> None:
        self.partner = partner
        self.kind = kind  # "sip" | "xmpp"

    def client_ca(self, pki: LabPki) -> Path:
        """The CA file this partner verifies client certificates with (scanner.lab.run)."""
        if self.partner.trusts_lab_ca:
            return pki.ca_file
        return acceptance_files(pki).dir / "untrusted-root.pem"

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
    out: list[Listener] = []
    for p in PARTNERS:
        cert = f"lab/{p.domain.removesuffix('.test')}"  # scanner.lab.pki.LAB_CERTS
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
