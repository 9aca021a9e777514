"""Real loopback handshakes against the lab listeners: what is captured, and every failure code."""

from __future__ import annotations

import datetime as dt
import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from scanner.handshake import (
    CLIENT_CERT_PROBE_FLOOR,
    CLIENT_CERT_PROBE_SECONDS,
    HandshakeResult,
    Target,
    handshake,
    probe_budget,
)
from scanner.lab.behaviours import TlsSettings
from scanner.lab.listeners import Behaviour, serve_sip_tls, serve_xmpp_starttls, serve_xmpps
from scanner.tls_client import ClientCredentials
from scanner.xmpp import TLS_NS, stream_header

LOOPBACK = "127.0.0.1"
CORPUS = Path(__file__).resolve().parent.parent / "test-certs"
DOMAIN = "contoso.test"


# --- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    chain: Path  # leaf + intermediate
    key: Path
    ca: Path
    client_cert: Path
    client_key: Path

    def chain_der(self) -> tuple[bytes, ...]:
        certs = x509.load_pem_x509_certificates(self.chain.read_bytes())
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)


def _cert(cn: str, key: rsa.RSAPrivateKey, issuer: str, issuer_key: rsa.RSAPrivateKey, *,
          ca: bool, eku: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _throwaway_pki(d: Path) -> Pki:
    """Used only when the shared corpus under test-certs/ is absent."""
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4)]
    root_key, inter_key, leaf_key, client_key = keys
    root = _cert("Root", root_key, "Root", root_key, ca=True)
    inter = _cert("Inter", inter_key, "Root", root_key, ca=True)
    leaf = _cert("sip.contoso.test", leaf_key, "Inter", inter_key, ca=False)
    client = _cert("client.test", client_key, "Inter", inter_key, ca=False,
                   eku=ExtendedKeyUsageOID.CLIENT_AUTH)

    def pem(*certs: x509.Certificate) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)

    def key_pem(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    files = {"edge.pem": pem(leaf, inter), "edge.key": key_pem(leaf_key),
             "ca-bundle.pem": pem(root), "client.pem": pem(client, inter),
             "client.key": key_pem(client_key)}
    for name, data in files.items():
        (d / name).write_bytes(data)
    return _pki_in(d)


def _pki_in(d: Path) -> Pki:
    return Pki(d / "edge.pem", d / "edge.key", d / "ca-bundle.pem", d / "client.pem",
               d / "client.key")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    corpus = _pki_in(CORPUS)
    if all(p.exists() for p in (corpus.chain, corpus.key, corpus.ca, corpus.client_cert,
                                corpus.client_key)):
        return corpus
    return _throwaway_pki(tmp_path_factory.mktemp("pki"))


# --- lab helpers ------------------------------------------------------------------------------------

Serve = Callable[..., Awaitable[None]]


async def start(nursery: trio.Nursery, serve: Serve, pki: Pki, **kwargs: Any) -> int:
    kwargs.setdefault("client_ca_file", pki.ca)
    port: int = await nursery.start(functools.partial(serve, LOOPBACK, 0, pki.chain, pki.key,
                                                      **kwargs))
    return port


def sip(port: int) -> Target:
    return Target("sip-federation", "sip.contoso.test", port, LOOPBACK)


def xmpp(port: int, domain: str = DOMAIN, service: str = "xmpp-server") -> Target:
    return Target(service, "xmpp.contoso.test", port, LOOPBACK, xmpp_domain=domain)


def code(result: HandshakeResult) -> str | None:
    return result.failure.code if result.failure else None


class Silent(Behaviour):
    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await trio.sleep_forever()
        return False


class Drip(Behaviour):
    """Sends a valid stream header one byte every 0.2 s, then whitespace keepalives forever."""

    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        data = stream_header(from_domain=DOMAIN, stream_id="d") + b" " * 10_000
        for i in range(len(data)):
            await stream.send_all(data[i : i + 1])
            await trio.sleep(0.2)
        return False


class Banner(Behaviour):
    async def on_accept(self, stream: trio.abc.Stream) -> bool:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        return False


class NoStartTls(Behaviour):
    def features(self, domain: str) -> bytes | None:
        return b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"


class RefuseStartTls(Behaviour):
    async def on_starttls(self, stream: trio.abc.Stream) -> bool:
        await stream.send_all(f"<failure xmlns='{TLS_NS}'/></stream:stream>".encode())
        return False


# --- captured data ----------------------------------------------------------------------------------


async def test_sip_direct_tls_captures_chain(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki)
    result = await handshake(sip(port), timeout=5)
    assert result.failure is None
    assert result.chain == pki.chain_der()
    assert len(result.chain) == 2
    assert result.tls is not None
    assert result.tls.version == "TLSv1.3"
    assert result.tls.cipher.startswith("TLS_")
    assert result.tls.alpn is None
    assert result.tls.client_cert_requested is True
    assert result.tls.client_cert_sent is False
    assert set(result.timings) == {"connect", "tls", "total"}
    assert result.xmpp_features == ()


async def test_sip_tls12_chain_and_request(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki, behaviour=TlsSettings(maximum=ssl.TLSVersion.TLSv1_2))
    result = await handshake(sip(port), timeout=5)
    assert result.failure is None
    assert result.tls is not None
    assert (result.tls.version, result.tls.client_cert_requested) == ("TLSv1.2", True)
    assert result.chain == pki.chain_der()


async def test_no_client_ca_means_no_request(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki, client_ca_file=None)
    result = await handshake(sip(port), timeout=5)
    assert result.tls is not None
    assert result.tls.client_cert_requested is False


async def test_credentials_presented(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki)
    creds = ClientCredentials(pki.client_cert, pki.client_key)
    result = await handshake(sip(port), timeout=5, credentials=creds)
    assert result.failure is None
    assert result.tls is not None
    assert result.tls.client_cert_requested is True
    assert result.tls.client_cert_sent is True


async def test_xmpp_starttls_end_to_end(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpp_starttls, pki, domains=[DOMAIN])
    result = await handshake(xmpp(port), timeout=5, from_domain="scanner.test")
    assert result.failure is None
    assert result.chain == pki.chain_der()
    assert result.xmpp_features == ("{urn:ietf:params:xml:ns:xmpp-tls}starttls",
                                    "{urn:xmpp:features:dialback}dialback")
    assert set(result.timings) == {"connect", "starttls", "tls", "total"}
    assert result.tls is not None
    assert result.tls.client_cert_requested is True


async def test_xmpps_alpn(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpps, pki)
    result = await handshake(xmpp(port, service="xmpps-server"), timeout=5)
    assert result.failure is None
    assert result.tls is not None
    assert result.tls.alpn == "xmpp-server"
    assert result.chain == pki.chain_der()


# --- failures ----------------------------------------------------------------------------------------


async def test_connect_refused() -> None:
    with trio.socket.socket() as sock:
        await sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]  # bound, never listening: the kernel refuses
        result = await handshake(sip(port), timeout=5)
    assert code(result) == "connect-refused"
    assert result.chain == ()
    assert result.tls is None


async def test_silence_is_handshake_timeout(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki, behaviour=Silent())
    begin = trio.current_time()
    result = await handshake(sip(port), timeout=1.0)
    assert trio.current_time() - begin < 1.5
    assert code(result) == "handshake-timeout"
    assert result.failure is not None
    assert result.failure.details["phase"] == "tls"


async def test_drip_hits_total_deadline(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpp_starttls, pki, domains=[DOMAIN], behaviour=Drip())
    begin = trio.current_time()
    result = await handshake(xmpp(port), timeout=1.0)
    assert trio.current_time() - begin < 2.0
    assert code(result) == "handshake-timeout"


async def test_starttls_not_offered(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpp_starttls, pki, domains=[DOMAIN],
                       behaviour=NoStartTls())
    result = await handshake(xmpp(port), timeout=5)
    assert code(result) == "starttls-not-offered"
    assert result.xmpp_features == ("{urn:xmpp:features:dialback}dialback",)


async def test_starttls_refused(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpp_starttls, pki, domains=[DOMAIN],
                       behaviour=RefuseStartTls())
    result = await handshake(xmpp(port), timeout=5)
    assert code(result) == "starttls-refused"


async def test_host_unknown_stream_error(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpp_starttls, pki, domains=[DOMAIN])
    result = await handshake(xmpp(port, domain="other.test"), timeout=5)
    assert code(result) == "stream-error"
    assert result.failure is not None
    assert result.failure.details["condition"] == "host-unknown"
    assert result.failure.details["text"] == "this server does not serve other.test"


async def test_non_xmpp_banner_is_protocol_error(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpp_starttls, pki, domains=[DOMAIN], behaviour=Banner())
    result = await handshake(xmpp(port), timeout=5)
    assert code(result) == "protocol-error"
    assert result.failure is not None
    assert "not an XMPP stream (received b'HTTP/1.1 400" in result.failure.details["reason"]


async def test_tls10_only_is_legacy(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki, behaviour=TlsSettings(maximum=ssl.TLSVersion.TLSv1))
    result = await handshake(sip(port), timeout=5)
    assert code(result) == "tls-legacy-only"
    assert result.tls is not None
    assert result.tls.version == "TLSv1"
    assert result.chain == pki.chain_der()


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
async def test_client_certificate_required(nursery: trio.Nursery, pki: Pki,
                                           maximum: ssl.TLSVersion) -> None:
    port = await start(nursery, serve_sip_tls, pki,
                       behaviour=TlsSettings(maximum=maximum, require_client_cert=True))
    result = await handshake(sip(port), timeout=5)
    assert code(result) == "client-certificate-required"
    assert result.failure is not None
    expected = "certificate_required" if maximum == ssl.TLSVersion.TLSv1_3 else "handshake_failure"
    assert result.failure.details["alert"] == expected
    assert result.chain == pki.chain_der()  # captured from the Certificate message
    if maximum == ssl.TLSVersion.TLSv1_3:  # the handshake completed; the alert came after it
        assert result.tls is not None
        assert (result.tls.version, result.tls.client_cert_requested, result.tls.client_cert_sent) == (
            "TLSv1.3", True, False)
    else:  # TLS 1.2: refused inside the handshake, nothing was negotiated
        assert result.tls is None


async def test_required_client_certificate_satisfied(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki,
                       behaviour=TlsSettings(maximum=ssl.TLSVersion.TLSv1_3, require_client_cert=True))
    creds = ClientCredentials(pki.client_cert, pki.client_key)
    result = await handshake(sip(port), timeout=5, credentials=creds)
    assert result.failure is None
    assert result.tls is not None
    assert result.tls.client_cert_sent is True


async def test_tls_handshake_failed_on_garbage(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_sip_tls, pki, behaviour=Banner())
    result = await handshake(sip(port), timeout=5)
    assert code(result) == "tls-handshake-failed"
    assert result.failure is not None
    assert result.failure.details["reason"] == "WRONG_VERSION_NUMBER"


async def test_unloadable_client_cert_is_scan_error(tmp_path: Path) -> None:
    creds = ClientCredentials(tmp_path / "missing.pem", tmp_path / "missing.key")
    result = await handshake(sip(1), timeout=1, credentials=creds)
    assert code(result) == "scan-error"


async def test_listener_survives_misbehaving_client(nursery: trio.Nursery, pki: Pki) -> None:
    port = await start(nursery, serve_xmpp_starttls, pki, domains=[DOMAIN])
    stream = await trio.open_tcp_stream(LOOPBACK, port)
    await stream.send_all(b"<!DOCTYPE x [<!ENTITY a 'b'>]>")
    await stream.aclose()
    result = await handshake(xmpp(port), timeout=5)
    assert result.failure is None


async def test_connect_timeout_when_syns_go_unanswered() -> None:
    """A listener whose accept queue is full: Linux drops the SYN, as a filtering firewall
    would, and the TCP connect itself runs into the deadline."""
    with trio.socket.socket() as listener, trio.socket.socket() as filler:
        await listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        await filler.connect((LOOPBACK, port))  # takes the only place in the queue
        begin = trio.current_time()
        result = await handshake(sip(port), timeout=1.0)
    assert trio.current_time() - begin < 1.5
    assert code(result) == "connect-timeout"
    assert result.chain == () and result.tls is None


def test_probe_budget_follows_the_slower_of_connect_and_handshake() -> None:
    """The wait for a TLS 1.3 server's verdict on our missing client certificate: on a quiet
    loopback the 50 ms floor; behind a slow handshake (a loaded server or scanner) twice the
    handshake; behind a long round trip four connects; never above the ceiling or half of
    what is left of the deadline."""
    assert probe_budget(connect=0.0005, tls=0.004, remaining=9.0) == CLIENT_CERT_PROBE_FLOOR
    assert probe_budget(connect=0.0005, tls=0.080, remaining=9.0) == pytest.approx(0.160)
    assert probe_budget(connect=0.050, tls=0.060, remaining=9.0) == pytest.approx(0.200)
    assert probe_budget(connect=0.200, tls=0.250, remaining=9.0) == CLIENT_CERT_PROBE_SECONDS
    assert probe_budget(connect=0.050, tls=0.060, remaining=0.1) == pytest.approx(0.05)
    assert probe_budget(connect=0.050, tls=0.060, remaining=-1.0) == 0.0
