"""Hostile and broken peers for the lab: misbehaving listeners, DNS traps, and a world of them.

Theory of this module
---------------------
A scanner talks to servers it does not control. Every way a peer can misbehave that fedscan
promises to survive is one :class:`~scanner.lab.listeners.Behaviour` subclass here, and
:func:`hostile_world` puts each behind its own lab domain, so a real ``fedscan scan`` (DNS,
connect, negotiate, handshake, verify) reaches it and the tests assert the finding it earns.

The rules it keeps:

* Deterministic on the wire. A peer that should look "closed" sends FIN, never a racy RST;
  a peer that should "reset" resets after the client has read what came before. Every
  scripted peer reads the client's first bytes before answering and then drains until the
  client leaves (:func:`linger`), so the kernel never turns an unread buffer into a reset.
* Stallers stall only while the client stays: silence and drips end when the scanner hangs
  up, so a scan of thousands of hostile endpoints does not leave the lab holding sockets.
* Malformed DER cannot be served through OpenSSL (it refuses to load it), so
  :class:`FakeTls12Certificate` is a tiny TLS 1.2 server of our own that writes ServerHello,
  a Certificate message with whatever bytes it is given, and ServerHelloDone. The scanner's
  TLS message callback captures the message before OpenSSL rejects it, which is exactly the
  path a broken real server takes.
* Certificates for the hostile lab are made on first use (:func:`hostile_pki`) from the
  corpus' issuing CA, so healthy endpoints are healthy (no finding at the corpus time) and
  the long chain and the 1 MB certificate differ from them in one respect only.
* The world is data: a :class:`~scanner.lab.zones.LabWorld` whose listeners carry
  behaviours, with extra DNS records, DNS misbehaviours and refusing ports, served by
  :func:`scanner.lab.run.run_lab` like every other lab world.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import socket
import ssl
import struct
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.findings import CODES, Severity, Status, worst
from scanner.lab.listeners import (
    DEFAULT_BEHAVIOUR,
    MAX_READ,
    Behaviour,
)
from scanner.lab.pki import lab_pki
from scanner.lab.zones import PORT_OF, SIP, XMPP, XMPPS, LabDomain, LabWorld, Listener, Srv
from scanner.xmpp import PROCEED_BYTES, STREAMS_NS, TLS_NS, stream_error_bytes, stream_header

HOSTILE_NET: Final = "127.77.60"
HOSTILE_SUFFIX: Final = "hostile.test"
LINGER_SECONDS: Final = 30.0  # a scripted peer waits at most this long for the client to leave
DRIP_INTERVAL: Final = 1.0  # "a byte per second"
SRV_FLOOD: Final = 500
LONG_CHAIN: Final = 100
BIG_CERT_BYTES: Final = 1 << 20

# --- wire helpers ------------------------------------------------------------------------------------


async def linger(stream: trio.abc.Stream, seconds: float = LINGER_SECONDS) -> None:
    """Read and discard until the client closes (bounded in time and per read)."""
    with trio.move_on_after(seconds):
        while await stream.receive_some(MAX_READ):
            pass


async def client_speaks(stream: trio.abc.Stream) -> None:
    """Wait for the client's first bytes (a ClientHello or a stream header), so that no
    answer races the client's request and a later close is a FIN, not a reset."""
    await stream.receive_some(MAX_READ)


def tls_record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(body)) + body


def handshake_message(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def certificate_message(ders: Sequence[bytes]) -> bytes:
    """A TLS 1.2 Certificate handshake message carrying ``ders`` verbatim."""
    entries = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return handshake_message(11, len(entries).to_bytes(3, "big") + entries)


def server_hello_tls12() -> bytes:
    """A TLS 1.2 ServerHello for ECDHE-RSA-AES128-GCM-SHA256 with secure renegotiation."""
    extensions = b"\xff\x01\x00\x01\x00"  # renegotiation_info, empty
    body = (b"\x03\x03" + b"\x42" * 32 + b"\x00" + b"\xc0\x2f" + b"\x00"
            + len(extensions).to_bytes(2, "big") + extensions)
    return handshake_message(2, body)


HANDSHAKE_FAILURE_ALERT: Final = tls_record(21, b"\x02\x28")  # fatal, handshake_failure
# warning-level unrecognized_name (which does not end a handshake), then bytes that are no TLS
WARNING_THEN_GARBAGE: Final = tls_record(21, b"\x01\x70") + b"\x00" * 16


# --- TCP misbehaviour --------------------------------------------------------------------------------


class CloseOnAccept(Behaviour):
    """Accepts, then closes cleanly (FIN) without a byte."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        if isinstance(stream, trio.SocketStream):
            await stream.send_eof()
        await linger(stream)
        return False


class SilentOnAccept(Behaviour):
    """Accepts, reads whatever comes, never answers (a black-holing proxy)."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await linger(stream)
        return False


class ResetMidHandshake(Behaviour):
    """Reads the ClientHello, sends the first bytes of a ServerHello, then resets (RST)."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(tls_record(22, server_hello_tls12())[:7])
        await trio.sleep(0.2)  # let the client read them: an RST discards unread data
        if isinstance(stream, trio.SocketStream):
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False


class Drip(Behaviour):
    """Sends a plausible answer one byte per ``interval`` seconds, forever.

    Every read of the client succeeds, so only a deadline on the whole exchange ends it."""

    def __init__(self, payload: bytes, interval: float = DRIP_INTERVAL) -> None:
        self.payload = payload
        self.interval = interval

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        data = self.payload + b" " * 1_000_000
        for i in range(len(data)):
            await stream.send_all(data[i : i + 1])
            await trio.sleep(self.interval)
        return False


# --- TLS misbehaviour --------------------------------------------------------------------------------


class Scripted(Behaviour):
    """Answers the client's first bytes with fixed bytes (no TLS, no XMPP), then lingers."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(self.reply)
        await linger(stream)
        return False


class TlsSettings(Behaviour):
    """A server that differs only in its TLS settings: legacy-only, demanding mutual TLS, or
    refusing the name asked for (SNI) with an unrecognized_name alert."""

    def __init__(self, *, maximum: ssl.TLSVersion | None = None,
                 require_client_cert: bool = False, reject_sni: bool = False) -> None:
        self.maximum = maximum
        self.require_client_cert = require_client_cert
        self.reject_sni = reject_sni

    def configure_tls(self, ctx: ssl.SSLContext) -> None:
        if self.maximum is not None:
            with warnings.catch_warnings():  # TLS 1.0 is deprecated: that is the point
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.maximum_version = self.maximum
                if self.maximum < ssl.TLSVersion.TLSv1_2:
                    ctx.minimum_version = self.maximum
                    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if self.require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
        if self.reject_sni:  # a virtual host with no certificate for the name asked
            ctx.sni_callback = lambda _obj, _name, _ctx: ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME


class DropWithoutClientCert(Behaviour):
    """Asks for a client certificate and, finding none, closes the TCP connection right after
    the TLS 1.3 handshake: no alert, no session ticket (as some servers that require mutual TLS
    do; OpenSSL's own servers send certificate_required instead). ``reset``: with an RST (the
    client has read everything by then) instead of a FIN."""

    def __init__(self, *, reset: bool = False) -> None:
        self.reset = reset

    def configure_tls(self, ctx: ssl.SSLContext) -> None:
        ctx.num_tickets = 0  # a ticket would tell the client it was accepted

    async def after_tls(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        if stream.getpeercert(binary_form=True):
            await super().after_tls(stream)
            return
        transport = stream.transport_stream
        if self.reset and isinstance(transport, trio.SocketStream):
            transport.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await trio.aclose_forcefully(transport)  # FIN (or RST), without close_notify


class FakeTls12Certificate(Behaviour):
    """A hand-written TLS 1.2 server whose Certificate message carries ``ders`` verbatim.

    OpenSSL will not serve malformed DER, so this writes the records itself."""

    def __init__(self, ders: Sequence[bytes]) -> None:
        self.flight = b"".join(
            tls_record(22, msg)
            for msg in (server_hello_tls12(), certificate_message(ders), handshake_message(14, b""))
        )

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(self.flight)
        await linger(stream)
        return False


# --- XMPP misbehaviour -------------------------------------------------------------------------------


def _header(domain: str = "hostile.test") -> bytes:
    return stream_header(from_domain=domain, stream_id="hostile")


class Features(Behaviour):
    """Answers the stream header with these features (bytes as sent, anything goes)."""

    def __init__(self, features: bytes) -> None:
        self.payload = features

    def features(self, domain: str) -> bytes | None:
        return self.payload


class RefuseStartTls(Behaviour):
    async def on_starttls(self, stream: trio.abc.Stream) -> bool:
        await stream.send_all(f"<failure xmlns='{TLS_NS}'/></stream:stream>".encode())
        await linger(stream)
        return False


class InjectAfterProceed(Behaviour):
    """``<proceed/>`` followed by plaintext in the same write (CVE-2011-0411 class)."""

    async def on_starttls(self, stream: trio.abc.Stream) -> bool:
        await stream.send_all(PROCEED_BYTES + b"<iq type='set'>injected</iq>")
        await linger(stream)
        return False


class EndlessFeatures(Behaviour):
    """A stream header, then ``<stream:features>`` that never ends: children forever."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await client_speaks(stream)
        await stream.send_all(_header() + b"<stream:features>")
        chunk = b"<x xmlns='urn:example:flood'/>" * 256
        while True:  # until the client hangs up (BrokenResourceError ends the connection)
            await stream.send_all(chunk)
            await trio.sleep(0)


BILLION_LAUGHS: Final = (
    b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    + b"".join(
        f"<!ENTITY lol{i} '{('&lol' + (str(i - 1) if i > 1 else '') + ';') * 10}'>".encode()
        for i in range(1, 10)
    )
    + b"]><stream:stream xmlns='jabber:server' xmlns:stream='" + STREAMS_NS.encode()
    + b"' version='1.0'>&lol9;"
)
EXTERNAL_ENTITY: Final = (
    b"<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
    b"<stream:stream xmlns='jabber:server' xmlns:stream='" + STREAMS_NS.encode()
    + b"' version='1.0'>&xxe;"
)
INVALID_XML: Final = _header() + b"<stream:features><starttls xmlns='" + TLS_NS.encode() + (
    b"'></stream:features>")
SSH_BANNER: Final = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"
SIP_RESPONSE: Final = (b"SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/TCP 0.0.0.0\r\n"
                       b"Content-Length: 0\r\n\r\n")
HTTP_RESPONSE: Final = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
NO_STARTTLS: Final = b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
OPTIONAL_STARTTLS: Final = (b"<stream:features><starttls xmlns='" + TLS_NS.encode() + b"'/>"
                            b"<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>")


def stream_error_reply(condition: str, text: str) -> bytes:
    return _header() + stream_error_bytes(condition, text) + b"</stream:stream>"


# --- certificates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostilePki:
    """Generated files (absolute paths without suffix, usable as ``Listener.cert``)."""

    healthy: str  # leaf + issuing CA, covering every name given
    long_chain: str  # leaf + LONG_CHAIN - 1 CAs above it
    big: str  # a leaf of over 1 MB (one huge private extension)
    healthy_der: bytes  # the healthy leaf's DER, for malformed variants


_TEMP: list[tempfile.TemporaryDirectory[str]] = []
_PKI_LOCK = threading.Lock()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _utc(year: int) -> dt.datetime:
    return dt.datetime(year, 1, 1, tzinfo=dt.UTC)


def _leaf_builder(names: Sequence[str], key: rsa.RSAPrivateKey, issuer: x509.Name,
                  serial: int, issuer_key: x509.AuthorityKeyIdentifier) -> x509.CertificateBuilder:
    """A web-PKI-conformant leaf (AKI included), so that only the intended fault shows."""
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_utc(2026))
        .not_valid_after(_utc(2040))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(issuer_key, critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.contoso.test/issuing1.crl")],
            None, None, None)]), critical=False)
    )


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def hostile_pki(names: Sequence[str]) -> HostilePki:
    """Certificates for the hostile lab, made once per process and name set."""
    with _PKI_LOCK:
        return _hostile_pki(tuple(names))


@functools.cache
def _hostile_pki(names: tuple[str, ...]) -> HostilePki:
    tmp = tempfile.TemporaryDirectory(prefix="fedscan-hostile-")
    _TEMP.append(tmp)  # removed at interpreter exit
    out = Path(tmp.name)
    pki = lab_pki()
    issuing, top = pki.issuer("intermediate"), pki.issuer("root")
    inter, inter_key, root, root_key = issuing.cert, issuing.key, top.cert, top.key
    key = serialization.load_pem_private_key(pki.key("edge").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    key_pem = pki.key("edge").read_bytes()
    serial = int.from_bytes(hashlib.sha256("\0".join(names).encode()).digest()[:8], "big")

    inter_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key())
    healthy = _leaf_builder(names, key, inter.subject, serial, inter_aki).sign(inter_key, hashes.SHA256())
    (out / "healthy.pem").write_bytes(_pem(healthy, inter))

    # 99 EC CAs (cheap to make), each issuing the next, the top one issued by the root
    cas: list[x509.Certificate] = []
    issuer_name, issuer_key = root.subject, root_key
    signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = root_key
    for depth in range(1, LONG_CHAIN):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(_name(f"Hostile Long Chain CA {depth}"))
              .issuer_name(issuer_name).public_key(ca_key.public_key()).serial_number(1000 + depth)
              .not_valid_before(_utc(2019)).not_valid_after(_utc(2060))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(signer, hashes.SHA256()))
        cas.append(ca)
        issuer_name, signer = ca.subject, ca_key
    del issuer_key
    long_aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
    long_leaf = _leaf_builder(names, key, issuer_name, serial + 1, long_aki).sign(signer, hashes.SHA256())
    (out / "long.pem").write_bytes(_pem(long_leaf, *reversed(cas)))

    filler = b"\x04\x83" + BIG_CERT_BYTES.to_bytes(3, "big") + b"A" * BIG_CERT_BYTES
    big = (_leaf_builder(names, key, inter.subject, serial + 2, inter_aki)
           .add_extension(x509.UnrecognizedExtension(
               x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), filler), critical=False)
           .sign(inter_key, hashes.SHA256()))
    (out / "big.pem").write_bytes(_pem(big, inter))
    for stem in ("healthy", "long", "big"):
        (out / f"{stem}.key").write_bytes(key_pem)
    return HostilePki(str(out / "healthy"), str(out / "long"), str(out / "big"),
                      healthy.public_bytes(serialization.Encoding.DER))


def malformed_der(der: bytes) -> bytes:
    """The healthy leaf with its outer length claiming one byte more than there is."""
    assert der[0] == 0x30 and der[1] == 0x82
    length = int.from_bytes(der[2:4], "big") + 1
    return der[:2] + length.to_bytes(2, "big") + der[4:]


# --- the hostile world -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile lab domain: what misbehaves, where, and what a scan must say."""

    label: str  # the domain is <label>.hostile.test
    kind: str  # "sip" | "xmpp" | "xmpps" | "dns"
    story: str
    codes: tuple[str, ...]  # the misbehaving endpoint's finding codes (DNS: the service's)
    behaviour: Behaviour = DEFAULT_BEHAVIOUR
    cert: str = "healthy"  # a HostilePki field: "healthy" | "long_chain" | "big"
    refused: bool = False

    @property
    def domain(self) -> str:
        return f"{self.label}.{HOSTILE_SUFFIX}"


def hostile_cases(pki: HostilePki | None = None) -> tuple[Case, ...]:
    """Every misbehaviour of issue 6, one lab domain each."""
    bad_der = malformed_der(pki.healthy_der) if pki else b"\x30\x00"
    drip_tls = tls_record(22, server_hello_tls12())
    return (
        # TCP
        Case("refused", "sip", "nothing listens on the published port", ("connect-refused",),
             refused=True),
        Case("close", "sip", "accepts, then closes without a byte", ("tls-handshake-failed",),
             CloseOnAccept()),
        Case("close-xmpp", "xmpp", "accepts the s2s connection, then closes",
             ("protocol-error",), CloseOnAccept()),
        Case("silent", "sip", "accepts, then never answers", ("handshake-timeout",),
             SilentOnAccept()),
        Case("reset", "sip", "resets the connection in the middle of the ServerHello",
             ("tls-handshake-failed",), ResetMidHandshake()),
        Case("drip", "sip", "a ServerHello at one byte per second", ("handshake-timeout",),
             Drip(drip_tls)),
        Case("drip-xmpp", "xmpp", "an XMPP stream header at one byte per second",
             ("handshake-timeout",), Drip(_header())),
        # TLS
        Case("garbage", "sip", "random bytes instead of a ServerHello", ("tls-handshake-failed",),
             Scripted(hashlib.sha512(b"garbage").digest() * 4)),
        Case("plaintext-sip", "sip", "plaintext SIP on the TLS port", ("tls-handshake-failed",),
             Scripted(SIP_RESPONSE)),
        Case("plaintext-http", "sip", "an HTTP server on the TLS port", ("tls-handshake-failed",),
             Scripted(HTTP_RESPONSE)),
        Case("alert", "sip", "answers the ClientHello with a handshake_failure alert",
             ("tls-handshake-failed",), Scripted(HANDSHAKE_FAILURE_ALERT)),
        Case("mutual-tls", "sip", "demands a client certificate (mutual TLS)",
             ("client-certificate-required",), TlsSettings(require_client_cert=True)),
        Case("mutual-tls-drop", "sip", "requires a client certificate, says so by closing (no alert)",
             ("client-certificate-required",), DropWithoutClientCert()),
        Case("mutual-tls-reset", "sip", "requires a client certificate, says so by resetting",
             ("client-certificate-required",), DropWithoutClientCert(reset=True)),
        Case("long-chain", "sip", "serves a chain of 100 certificates", ("chain-untrusted",),
             cert="long_chain"),
        Case("big-cert", "sip", "serves a certificate of over 1 MB", ("tls-handshake-failed",),
             cert="big"),
        Case("bad-der", "sip", "serves a certificate that is not valid DER",
             ("certificate-unparseable", "tls-handshake-failed"), FakeTls12Certificate([bad_der])),
        Case("unknown-name", "sip", "has no certificate for the name asked (SNI): unrecognized_name",
             ("tls-name-unrecognized",), TlsSettings(reject_sni=True)),
        Case("unknown-name-xmpp", "xmpp", "after STARTTLS, unrecognized_name for the XMPP domain",
             ("tls-name-unrecognized",), TlsSettings(reject_sni=True)),
        Case("warning-alert", "sip", "a warning-level unrecognized_name, then garbage",
             ("tls-handshake-failed",), Scripted(WARNING_THEN_GARBAGE)),
        Case("tls10", "sip", "speaks TLS 1.0 only", ("tls-legacy-only",),
             TlsSettings(maximum=ssl.TLSVersion.TLSv1)),
        Case("garbage-xmpps", "xmpps", "garbage on the XEP-0368 direct TLS port",
             ("tls-handshake-failed",), Scripted(b"\x00" * 64)),
        # XMPP
        Case("no-starttls", "xmpp", "stream features without STARTTLS", ("starttls-not-offered",),
             Features(NO_STARTTLS)),
        Case("starttls-optional", "xmpp", "offers STARTTLS without <required/>",
             ("starttls-optional",), Features(OPTIONAL_STARTTLS)),
        Case("starttls-failure", "xmpp", "answers <starttls/> with <failure/>",
             ("starttls-refused",), RefuseStartTls()),
        Case("host-unknown", "xmpp", "does not serve the domain: <host-unknown/>",
             ("stream-error",), Scripted(stream_error_reply("host-unknown", "not served here"))),
        Case("policy-violation", "xmpp", "closes the stream with <policy-violation/>",
             ("stream-error",), Scripted(stream_error_reply("policy-violation", "go away"))),
        Case("no-features", "xmpp", "sends its stream header but never any features",
             ("handshake-timeout",), Scripted(_header())),
        Case("unterminated", "xmpp", "starts <stream:features> and never finishes it",
             ("handshake-timeout",), Features(b"<stream:features><starttls xmlns='" + TLS_NS.encode()
                                              + b"'>")),
        Case("oversized", "xmpp", "stream features that never end (over the 64 KiB cap)",
             ("protocol-error",), EndlessFeatures()),
        Case("laughs", "xmpp", "a billion-laughs entity bomb", ("protocol-error",),
             Scripted(BILLION_LAUGHS)),
        Case("xxe", "xmpp", "an external entity (file:///etc/passwd)", ("protocol-error",),
             Scripted(EXTERNAL_ENTITY)),
        Case("bad-xml", "xmpp", "mismatched tags", ("protocol-error",), Scripted(INVALID_XML)),
        Case("ssh", "xmpp", "an SSH server on the XMPP port", ("protocol-error",),
             Scripted(SSH_BANNER)),
        Case("inject", "xmpp", "plaintext injected after <proceed/>", ("protocol-error",),
             InjectAfterProceed()),
        # DNS
        Case("servfail", "dns", "the SIP SRV lookup is answered SERVFAIL", ("dns-error",)),
        Case("dns-timeout", "dns", "the SIP SRV lookup is never answered", ("dns-error",)),
        Case("truncated", "dns", "UDP answers are truncated: the resolver retries over TCP", ()),
        Case("srv-flood", "dns", "500 SRV records for one name", ("srv-records-capped",)),
        Case("cname-loop", "dns", "the SRV name is a CNAME loop", ("dns-error",)),
        Case("no-address", "dns", "the SRV target has no A or AAAA record",
             ("target-unresolvable",)),
        Case("xn--bcher-kva", "dns", "an IDN domain (bücher), asked as U-label, upper case, with dot",
             ()),
    )


HEALTHY_DOMAIN: Final = f"healthy.{HOSTILE_SUFFIX}"
IDN_UNICODE: Final = f"BÜCHER.{HOSTILE_SUFFIX.upper()}."  # what a user may type


def _names(cases: Sequence[Case]) -> list[str]:
    names = [f"sip.{HEALTHY_DOMAIN}", HEALTHY_DOMAIN]
    for case in cases:
        names += [f"sip.{case.domain}", case.domain]
    return names


def hostile_world(net_octet_base: int = 10) -> LabWorld:
    """Each misbehaviour behind its own lab domain, plus a healthy domain to scan alongside.

    SIP and DNS cases publish only the SIP SRV record; XMPP and XMPPS cases publish a healthy
    SIP SRV record (target ``sip.<domain>``) and a hostile XMPP one (target ``xmpp.<domain>``).
    So a default three-service scan reports the misbehaving endpoint's codes plus the
    informational ``srv-*`` notes listed in each ``LabDomain``.
    """
    pki = hostile_pki(_names(hostile_cases()))
    base = net_octet_base
    listeners = [
        Listener("healthy-sip", "sip", base, pki.healthy),
        Listener("healthy-xmpp", "xmpp", base, pki.healthy, (HEALTHY_DOMAIN,)),
    ]
    srv = [Srv(SIP + HEALTHY_DOMAIN, f"sip.{HEALTHY_DOMAIN}", "healthy-sip"),
           Srv(XMPP + HEALTHY_DOMAIN, f"sip.{HEALTHY_DOMAIN}", "healthy-xmpp")]
    hosts: dict[str, tuple[int, ...]] = {f"sip.{HEALTHY_DOMAIN}": (base,)}
    behaviours: dict[str, Behaviour] = {}
    refused: set[str] = set()
    records: dict[tuple[str, str], list[str]] = {}
    dns_behaviours: dict[str, str] = {}
    domains = [LabDomain(HEALTHY_DOMAIN, "a healthy Edge scanned alongside", Status.OK,
                         ("srv-missing",))]
    octet = base
    for case in hostile_cases(pki):
        d, sip_target = case.domain, f"sip.{case.domain}"
        if case.kind == "dns":
            _dns_case(case, sip_target, srv, hosts, records, dns_behaviours, base)
            notes: tuple[str, ...] = ("srv-fallback", "srv-missing")
        else:
            octet += 1
            key = f"{case.label}-{case.kind}"
            listeners.append(Listener(key, case.kind, octet, getattr(pki, case.cert),
                                      (d,) if case.kind == "xmpp" else ()))
            behaviours[key] = case.behaviour
            if case.refused:
                refused.add(key)
            if case.kind == "sip":
                srv.append(Srv(SIP + d, sip_target, key))
                hosts[sip_target] = (octet,)
                notes = ("srv-fallback", "srv-missing")
            else:
                prefix = XMPP if case.kind == "xmpp" else XMPPS
                srv += [Srv(prefix + d, f"xmpp.{d}", key), Srv(SIP + d, sip_target, "healthy-sip")]
                hosts[f"xmpp.{d}"] = (octet,)
                hosts[sip_target] = (base,)
                notes = ("srv-missing",) if case.kind == "xmpp" else ("srv-fallback",)
        codes = tuple(sorted((*case.codes, *notes)))
        domains.append(LabDomain(d, case.story, _status(case.codes), codes))
    return LabWorld(
        tuple(listeners), tuple(srv), hosts, tuple(domains),
        dns_behaviours=dns_behaviours, behaviours=behaviours, refused=frozenset(refused),
        records={k: tuple(v) for k, v in records.items()},
    )


def _status(codes: Sequence[str]) -> Status:
    return worst(_SEVERITY_STATUS[CODES[c].severity] for c in codes)


_SEVERITY_STATUS: Final = {Severity.INFO: Status.OK, Severity.WARNING: Status.WARNING,
                           Severity.UNKNOWN: Status.UNKNOWN, Severity.CRITICAL: Status.CRITICAL}


def _dns_case(case: Case, target: str, srv: list[Srv], hosts: dict[str, tuple[int, ...]],
              records: dict[tuple[str, str], list[str]], behaviours: dict[str, str],
              healthy_octet: int) -> None:
    """DNS data for one DNS case; the SRV target (when there is one) is the healthy Edge."""
    srv_name = SIP + case.domain
    label = case.label
    if label in ("servfail", "dns-timeout"):
        srv.append(Srv(srv_name, target, "healthy-sip"))
        behaviours[srv_name] = "servfail" if label == "servfail" else "timeout"
    elif label == "truncated":
        srv.append(Srv(srv_name, target, "healthy-sip"))
        behaviours[srv_name] = "truncate"
    elif label == "srv-flood":  # distinct rdata (dnspython merges duplicates), one endpoint
        records[(srv_name, "SRV")] = [
            f"{i % 5} {i // 5} {PORT_OF}healthy-sip {target}." for i in range(SRV_FLOOD)
        ]
    elif label == "cname-loop":
        loop = f"loop.{case.domain}"
        records[(srv_name, "CNAME")] = [loop + "."]
        records[(loop, "CNAME")] = [srv_name + "."]
        return
    elif label == "no-address":
        srv.append(Srv(srv_name, target, "healthy-sip"))
        records[(target, "TXT")] = ['"exists, but has no address"']
        return
    else:
        srv.append(Srv(srv_name, target, "healthy-sip"))
    hosts[target] = (healthy_octet,)


# --- a generated world for scale under hostility ---------------------------------------------------

SCALE_SUFFIX: Final = "scale.test"


@dataclass(frozen=True)
class HostileGroup:
    """One misbehaviour shared by many domains: a SIP and an XMPP listener on each node."""

    name: str
    sip: Behaviour | None  # None: the port refuses connections
    xmpp: Behaviour | None
    stalls: bool  # holds the scanner until its deadline (the bound counts these)


def scale_groups() -> tuple[HostileGroup, ...]:
    return (
        HostileGroup("refused", None, None, stalls=False),
        HostileGroup("close", CloseOnAccept(), CloseOnAccept(), stalls=False),
        HostileGroup("silent", SilentOnAccept(), SilentOnAccept(), stalls=True),
        HostileGroup("garbage", Scripted(b"\x00" * 64), Scripted(SSH_BANNER), stalls=False),
        HostileGroup("alert-bomb", Scripted(HANDSHAKE_FAILURE_ALERT), Scripted(BILLION_LAUGHS),
                     stalls=False),
        HostileGroup("drip", Drip(tls_record(22, server_hello_tls12()), 0.5), Drip(_header(), 0.5),
                     stalls=True),
        HostileGroup("reset-inject", ResetMidHandshake(), InjectAfterProceed(), stalls=False),
    )


@dataclass(frozen=True)
class ScaleWorld:
    world: LabWorld
    healthy_domains: tuple[str, ...]
    hostile_domains: tuple[str, ...]
    stalling_endpoints: int  # endpoints that hold the scanner until its deadline
    endpoints: int  # every endpoint a scan of all domains handshakes with


def scale_world(domains: int = 125, nodes: int = 4, hostile_every: int = 10,
                hostile_per: int = 3) -> ScaleWorld:
    """``domains`` domains, each SIP + XMPP on a pool of ``nodes`` addresses (one SRV target
    with ``nodes`` A records); ``hostile_per`` of every ``hostile_every`` domains sit on a
    hostile pool. Listeners are shared: one per service per node address."""
    names = [f"d{i:03}.{SCALE_SUFFIX}" for i in range(domains)]
    hostile_names = [n for i, n in enumerate(names) if i % hostile_every < hostile_per]
    healthy_names = [n for n in names if n not in hostile_names]
    pki = hostile_pki([name for d in names for name in (f"sip.{d}", d)])
    groups = scale_groups()
    listeners: list[Listener] = []
    behaviours: dict[str, Behaviour] = {}
    refused: set[str] = set()
    pools: list[tuple[int, ...]] = []
    for index, group in enumerate((None, *groups)):
        octets = tuple(10 + index * nodes + n for n in range(nodes))
        pools.append(octets)
        for n, octet in enumerate(octets):
            tag = group.name if group else "healthy"
            sip_key, xmpp_key = f"{tag}-sip-{n}", f"{tag}-xmpp-{n}"
            listeners += [
                Listener(sip_key, "sip", octet, pki.healthy,
                         same_port_as=None if n == 0 else f"{tag}-sip-0"),
                Listener(xmpp_key, "xmpp", octet, pki.healthy, tuple(names),
                         same_port_as=None if n == 0 else f"{tag}-xmpp-0"),
            ]
            if group is not None:
                for key, behaviour in ((sip_key, group.sip), (xmpp_key, group.xmpp)):
                    if behaviour is None:
                        refused.add(key)
                    else:
                        behaviours[key] = behaviour
    srv: list[Srv] = []
    hosts: dict[str, tuple[int, ...]] = {}
    lab_domains: list[LabDomain] = []
    stalling = 0
    for d in names:
        target = f"sip.{d}"
        if d in hostile_names:
            g = hostile_names.index(d) % len(groups)
            pool, tag = pools[1 + g], groups[g].name
            stalling += 2 * nodes if groups[g].stalls else 0
        else:
            pool, tag = pools[0], "healthy"
        srv += [Srv(SIP + d, target, f"{tag}-sip-0"), Srv(XMPP + d, target, f"{tag}-xmpp-0")]
        hosts[target] = pool
        story = "healthy pool" if tag == "healthy" else f"hostile pool: {tag}"
        status = Status.OK if tag == "healthy" else Status.CRITICAL
        lab_domains.append(LabDomain(d, story, status, ()))
    world = LabWorld(tuple(listeners), tuple(srv), hosts, tuple(lab_domains),
                     behaviours=behaviours, refused=frozenset(refused))
    return ScaleWorld(world, tuple(healthy_names), tuple(hostile_names), stalling,
                      2 * nodes * domains)
