r"""A lab of N endpoints, for benchmarks and scale tests: data plus a little serving glue.

Theory of this module
---------------------
* The world is plain :class:`~scanner.lab.zones.LabWorld` data, so :func:`scanner.lab.run.run_lab`
  starts it like the default world. Every domain ``dNNNNN.bench.test`` has a SIP federation
  SRV record and an XMPP server SRV record, both pointing at ``sip.dNNNNN.bench.test``, a
  two-node pool (two A records); so a domain is four endpoints and N endpoints are N/4
  domains. No domain has XMPPS: discovery reports that as informational ``srv-missing``.
* Every SRV target gets its own explicit port (``base_port + index``), so the two pool nodes
  of a target share a port and no two listeners ever collide on (address, port). Nodes are
  spread over ``.2``-``.251`` of the lab's /24.
* Each domain has its own certificate (leaf + the corpus intermediate, signed by the corpus
  CA), like real partners; the pool nodes of a domain serve the same one, as a healthy pool
  does. All leaves share one RSA key: issuing 2,500 certificates costs a few seconds, minting
  2,500 keys would cost minutes. Certificates live in a cache directory and are reused.
* A fraction of the endpoints can be *dead*: the address accepts TCP (a listening socket the
  lab never accepts from, so the kernel completes the handshake) and then never answers: the
  world's ``silent`` listeners, which cost the lab nothing.
* Live listeners are :class:`AnsweringPeer`\ s (the world's ``behaviours``): after TLS
  they answer whatever the client sends with one line and keep the connection until the client
  leaves. sslyze probes client authentication by writing a byte after the handshake and
  reading one: a listener that hangs up makes it drop the server, one that stays silent costs
  it a 5 s read timeout per server (what it meets at a real Edge that waits for a whole SIP
  message). Answering is the kindest peer for sslyze, so the comparison flatters it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from scanner.findings import Status
from scanner.lab.listeners import MAX_READ, Behaviour
from scanner.lab.zones import SIP, XMPP, LabDomain, LabWorld, Listener, Srv

SUFFIX = "bench.test"
ENDPOINTS_PER_DOMAIN = 4  # SIP + XMPP, two pool nodes each
FIRST_HOST = 2  # .1 is the lab's DNS server
HOSTS = 250  # nodes live on .2 .. .251
DEFAULT_BASE_PORT = 20000
# What a partner-view scan of a healthy bench domain reports (no XMPPS record).
HEALTHY_CODES = ("srv-missing",)


@dataclass(frozen=True)
class ScaleEndpoint:
    """One endpoint of the scale lab, pre-resolved (what the floor and sslyze are given)."""

    domain: str
    service: str  # "sip-federation" | "xmpp-server"
    target: str  # SRV target
    host: int  # last octet in the lab's /24
    port: int
    dead: bool

    @property
    def xmpp_domain(self) -> str | None:
        return self.domain if self.service == "xmpp-server" else None

    @property
    def sni(self) -> str:
        """SIP peers name the SRV target, XMPP peers the XMPP domain (as fedscan does)."""
        return self.xmpp_domain or self.target

    def to_json(self, net: str) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "service": self.service,
            "target": self.target,
            "address": f"{net}.{self.host}",
            "port": self.port,
            "sni": self.sni,
            "xmpp_domain": self.xmpp_domain,
            "dead": self.dead,
        }


@dataclass(frozen=True)
class ScaleLab:
    world: LabWorld
    endpoints: tuple[ScaleEndpoint, ...]

    @property
    def domains(self) -> list[str]:
        return [d.domain for d in self.world.domains]

    @property
    def live(self) -> list[ScaleEndpoint]:
        return [e for e in self.endpoints if not e.dead]

    @property
    def dead(self) -> list[ScaleEndpoint]:
        return [e for e in self.endpoints if e.dead]


def domain_name(index: int) -> str:
    return f"d{index:05d}.{SUFFIX}"


def is_dead(index: int, fraction: float) -> bool:
    """Spread ``fraction`` of the endpoints evenly: index i is dead when floor grows at i."""
    return int((index + 1) * fraction) > int(index * fraction)


def scale_world(
    endpoints: int,
    cert_dir: Path,
    *,
    dead_fraction: float = 0.0,
    base_port: int = DEFAULT_BASE_PORT,
    behaviour: Behaviour | None = None,
) -> ScaleLab:
    """A world of ``endpoints`` endpoints (rounded up to whole domains of four)."""
    if endpoints < 1:
        raise ValueError("need at least one endpoint")
    if not 0.0 <= dead_fraction < 1.0:
        raise ValueError("dead_fraction must be in [0, 1)")
    count = -(-endpoints // ENDPOINTS_PER_DOMAIN)
    if base_port + 2 * count > 65535:
        raise ValueError(f"{count} domains do not fit above port {base_port}")
    names = [domain_name(i) for i in range(count)]
    chains = ensure_certificates(cert_dir, names)
    listeners: list[Listener] = []
    answering: list[str] = []
    silent: list[str] = []
    srv: list[Srv] = []
    hosts: dict[str, tuple[int, ...]] = {}
    eps: list[ScaleEndpoint] = []
    for i, domain in enumerate(names):
        target = f"sip.{domain}"
        nodes = (FIRST_HOST + (2 * i) % HOSTS, FIRST_HOST + (2 * i + 1) % HOSTS)
        hosts[target] = nodes
        for s, (service, prefix, kind) in enumerate(
            (("sip-federation", SIP, "sip"), ("xmpp-server", XMPP, "xmpp"))
        ):
            port = base_port + 2 * i + s
            srv.append(Srv(prefix + domain, target, None, port))
            for n, host in enumerate(nodes):
                index = ENDPOINTS_PER_DOMAIN * i + 2 * s + n
                dead = is_dead(index, dead_fraction)
                eps.append(ScaleEndpoint(domain, service, target, host, port, dead))
                key = f"{domain}/{kind}/{n}"
                listeners.append(
                    Listener(
                        key, kind, host, str(chains[domain]),
                        (domain,) if kind == "xmpp" else (), port,
                    )
                )
                (silent if dead else answering).append(key)
    lab_domains = tuple(
        LabDomain(d, "bench domain: SIP + XMPP, two-node pool", Status.OK, HEALTHY_CODES) for d in names
    )
    peer = behaviour or AnsweringPeer()
    world = LabWorld(
        tuple(listeners), tuple(srv), hosts, lab_domains,
        behaviours=dict.fromkeys(answering, peer), silent=frozenset(silent),
    )
    return ScaleLab(world, tuple(eps))


class AnsweringPeer(Behaviour):
    """After TLS, answer each read with one line until the client leaves (the listener's
    deadline still bounds the connection)."""

    async def after_tls(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        while await stream.receive_some(MAX_READ):
            await stream.send_all(b"SIP/2.0 400 Bad Request\r\n\r\n")


# --- certificates ---------------------------------------------------------------------------------


def ensure_certificates(cert_dir: Path, domains: Sequence[str]) -> dict[str, Path]:
    """``cert_dir/<domain>`` (+ ``.pem`` chain, ``.key``) for every domain; existing ones are kept.

    Returns the stem of each (what :class:`Listener.cert` takes: an absolute stem works because
    ``dir / "/abs/stem"`` is ``/abs/stem``). They are signed by the lab's issuing CA
    (:mod:`scanner.lab.pki`); when that CA is new, every one is made again.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from scanner.lab.pki import lab_pki

    cert_dir.mkdir(parents=True, exist_ok=True)
    stems = {d: cert_dir / d for d in domains}
    issuing = lab_pki().issuer()
    inter_pem = issuing.pem
    stamp = cert_dir / "issuer.pem"
    if not stamp.exists() or stamp.read_bytes() != inter_pem:
        for old in cert_dir.glob("*.pem"):
            old.unlink()
        stamp.write_bytes(inter_pem)
    missing = [d for d, stem in stems.items() if not Path(f"{stem}.pem").exists()]
    if not missing:
        return stems
    key_path = cert_dir / "shared.key"
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    key_pem = key_path.read_bytes()
    inter, inter_key = issuing.cert, issuing.key
    ski = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    for domain in missing:
        cert = _leaf(domain, key, inter.subject, inter_key, ski)
        stem = stems[domain]
        # write the key first: a chain without its key would be taken as complete next time
        Path(f"{stem}.key").write_bytes(key_pem)
        Path(f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + inter_pem)
    return stems


def _leaf(domain: str, key: Any, issuer: Any, issuer_key: Any, issuer_ski: Any) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = [f"sip.{domain}", domain]
    serial = int.from_bytes(domain.encode()[:16].ljust(16, b"\0"), "big") >> 1
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fedscan Bench"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial or 1)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints([
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier("http://crl.bench.test/issuing1.crl")],
                    relative_name=None, reasons=None, crl_issuer=None,
                )
            ]),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
