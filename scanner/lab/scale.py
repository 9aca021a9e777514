r"""A lab of N endpoints, for benchmarks and scale tests: data plus a little serving glue.

Theory of this module
---------------------
* The world is plain :class:`~scanner.lab.zones.LabWorld` data, so :func:`scanner.lab.run.run_lab`
  starts it like the default world. Every domain ``dNNNNN.bench.test`` has a SIP federation
  SRV record and an XMPP server SRV record, both pointing at ``sip.dNNNNN.bench.test``, a
  two-node pool (two A records); so a domain is four endpoints and N endpoints are N/4
  domains. No domain has XMPPS: discovery reports that as informational ``srv-missing``.
* Every SRV target gets its own explicit port (``base_port + index``), so the two pool nodes
  of a target share a port and no two listeners ever collide on (address, port). Every node
  has an address of its own (``.2``-``.251`` of the lab's /24, then the next /24s: see
  :func:`scanner.lab.run.lab_address`), serving its domain's SIP and XMPP ports, as an Edge
  does: so ``--per-address`` politeness never binds here, as it would not for a census of
  distinct partners; :func:`hosted_world` is the lab where it does.
* ``rtt`` makes the lab an internet: every server write that answers the client, and every
  DNS answer, is held back by one round-trip time (:class:`Delayed`). The TCP handshake
  itself stays at loopback speed (that would take ``tc netem`` and privileges).
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

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scanner.findings import Status
from scanner.lab.certfactory import Issuer, key_pem, leaf_builder, new_key, pem, utc
from scanner.lab.listeners import MAX_READ, Behaviour
from scanner.lab.pki import lab_pki
from scanner.lab.run import lab_address
from scanner.lab.zones import SIP, XMPP, LabDomain, LabWorld, Listener, Srv

SUFFIX = "bench.test"
ENDPOINTS_PER_DOMAIN = 4  # SIP + XMPP, two pool nodes each
FIRST_HOST = 2  # .1 is the lab's DNS server
HOSTS = 250  # nodes live on .2 .. .251, then on the next /24s (lab_address)
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
            "address": lab_address(net, self.host),
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


def node_host(node: int) -> int:
    """The lab host number of the ``node``-th node (0-based): its own address for each."""
    return FIRST_HOST + node if node < HOSTS else 256 + node - HOSTS


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
    rtt: float = 0.0,
) -> ScaleLab:
    """A world of ``endpoints`` endpoints (rounded up to whole domains of four); ``rtt``
    seconds of round-trip time on every answering write and DNS answer."""
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
        nodes = (node_host(2 * i), node_host(2 * i + 1))
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
    peer = behaviour or AnsweringPeer(rtt)
    world = LabWorld(
        tuple(listeners), tuple(srv), hosts, lab_domains,
        behaviours=dict.fromkeys(answering, peer), silent=frozenset(silent), dns_delay=rtt,
    )
    return ScaleLab(world, tuple(eps))


class AnsweringPeer(Behaviour):
    """After TLS, answer each read with one line until the client leaves (the listener's
    deadline still bounds the connection); with ``rtt``, on a :class:`Delayed` transport."""

    def __init__(self, rtt: float = 0.0) -> None:
        self.rtt = rtt

    def transport(self, stream: trio.SocketStream) -> trio.abc.Stream:
        return Delayed(stream, self.rtt) if self.rtt > 0 else stream

    async def after_tls(self, stream: trio.SSLStream[trio.abc.Stream]) -> None:
        while await stream.receive_some(MAX_READ):
            await stream.send_all(b"SIP/2.0 400 Bad Request\r\n\r\n")


class Delayed(trio.abc.Stream):
    """A server transport on which the first write after each read (the answer to what the
    client sent) leaves ``rtt`` seconds late: one round trip per exchange, as on the internet.
    Further writes of the same answer (a TLS flight in several records) are not delayed again."""

    def __init__(self, inner: trio.abc.Stream, rtt: float) -> None:
        self.inner = inner
        self.rtt = rtt
        self.owed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self.inner.receive_some(max_bytes)
        self.owed = self.owed or bool(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.owed:
            self.owed = False
            await trio.sleep(self.rtt)
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- one address, many hosted domains ------------------------------------------------------------


HOSTED_SUFFIX = "hosted.test"
HOSTED_EDGE = "edge.hosting.test"  # the certificate's first name
TCP_ESTABLISHED = 1  # tcp_states.h; what TCP_INFO's first byte says of an open connection


class ConnectionCounter:
    """Counts a listener address's open connections, and the most ever open at once.

    "Open" is the client's view: a connection whose client has sent its FIN is in CLOSE_WAIT
    at once, in the kernel, before the client's next SYN can arrive; so counting sockets in
    ESTABLISHED at each accept (``TCP_INFO``, Linux) never counts a closed one, however late
    the lab's own loop notices the close.
    """

    def __init__(self) -> None:
        self.peak = 0
        self.accepted = 0
        self._sockets: list[trio.socket.SocketType] = []

    def reset(self) -> None:
        self.peak = self.accepted = 0

    def opened(self, sock: trio.socket.SocketType) -> None:
        import socket

        self.accepted += 1
        live = [s for s in self._sockets if s.fileno() != -1]
        live.append(sock)
        self._sockets = live
        states = (s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] for s in live)
        self.peak = max(self.peak, sum(1 for st in states if st == TCP_ESTABLISHED))


class CountingPeer(AnsweringPeer):
    def __init__(self, counter: ConnectionCounter, rtt: float = 0.0, *,
                 request_client_cert: bool = True) -> None:
        super().__init__(rtt)
        self.counter = counter
        self.request_client_cert = request_client_cert

    def configure_tls(self, ctx: ssl.SSLContext) -> None:
        if not self.request_client_cert:
            ctx.verify_mode = ssl.CERT_NONE

    def transport(self, stream: trio.SocketStream) -> trio.abc.Stream:
        self.counter.opened(stream.socket)
        return super().transport(stream)


@dataclass(frozen=True)
class HostedLab:
    world: LabWorld
    counter: ConnectionCounter
    host: int

    @property
    def domains(self) -> list[str]:
        return [d.domain for d in self.world.domains]


def hosted_world(domains: int, cert_dir: Path, *, host: int = FIRST_HOST, rtt: float = 0.0,
                 base_port: int = DEFAULT_BASE_PORT, request_client_cert: bool = True) -> HostedLab:
    """One address serving ``domains`` hosted domains: SIP + XMPP each, the SRV target
    ``sip.<domain>`` (inside the domain, as Lync wants) resolving to the one address, one
    certificate naming them all, and a :class:`ConnectionCounter` on both ports. Without
    ``request_client_cert`` a scan skips its TLS 1.3 client-certificate probe (which waits
    for a session ticket these listeners do not send before the client writes): quicker tests."""
    names = [f"h{i:04d}.{HOSTED_SUFFIX}" for i in range(domains)]
    stem = ensure_hosted_certificate(cert_dir, HOSTED_EDGE, [*(f"sip.{d}" for d in names), *names])
    counter = ConnectionCounter()
    peer = CountingPeer(counter, rtt, request_client_cert=request_client_cert)
    listeners = (
        Listener("hosted/sip", "sip", host, str(stem), (), base_port),
        Listener("hosted/xmpp", "xmpp", host, str(stem), tuple(names), base_port + 1),
    )
    srv = [Srv(prefix + d, f"sip.{d}", key) for d in names
           for prefix, key in ((SIP, "hosted/sip"), (XMPP, "hosted/xmpp"))]
    lab_domains = tuple(
        LabDomain(d, "hosted on a shared Edge", Status.OK, HEALTHY_CODES) for d in names
    )
    world = LabWorld(listeners, tuple(srv), {f"sip.{d}": (host,) for d in names}, lab_domains,
                     behaviours=dict.fromkeys(("hosted/sip", "hosted/xmpp"), peer), dns_delay=rtt)
    return HostedLab(world, counter, host)


# --- certificates ---------------------------------------------------------------------------------


BENCH_ORG = "Fedscan Bench"
BENCH_CRL_URL = "http://crl.bench.test/issuing1.crl"


def ensure_certificates(cert_dir: Path, domains: Sequence[str]) -> dict[str, Path]:
    """``cert_dir/<domain>`` (+ ``.pem`` chain, ``.key``) for every domain; existing ones are kept.

    Returns the stem of each (what :class:`Listener.cert` takes: an absolute stem works because
    ``dir / "/abs/stem"`` is ``/abs/stem``). They are signed by the lab's issuing CA
    (:mod:`scanner.lab.pki`); when that CA is new, every one is made again.
    """
    cert_dir.mkdir(parents=True, exist_ok=True)
    stems = {d: cert_dir / d for d in domains}
    issuing = lab_pki().issuer()
    stamp = cert_dir / "issuer.pem"
    if not stamp.exists() or stamp.read_bytes() != issuing.pem:
        for old in cert_dir.glob("*.pem"):
            old.unlink()
        stamp.write_bytes(issuing.pem)
    missing = [d for d, stem in stems.items() if not Path(f"{stem}.pem").exists()]
    if not missing:
        return stems
    key = _shared_key(cert_dir)
    for domain in missing:
        _write_leaf(stems[domain], [f"sip.{domain}", domain], key, issuing)
    return stems


def ensure_hosted_certificate(cert_dir: Path, target: str, domains: Sequence[str]) -> Path:
    """One chain naming ``target`` and ``domains`` (a hosting provider's Edge), cached by
    the number of names; returns its stem."""
    stem = cert_dir / f"{target}-{len(domains)}"
    ensure_certificates(cert_dir, [domain_name(0)])  # the shared key; a new lab CA clears the dir
    if not Path(f"{stem}.pem").exists():
        _write_leaf(stem, [target, *domains], _shared_key(cert_dir), lab_pki().issuer())
    return stem


def _shared_key(cert_dir: Path) -> tuple[rsa.RSAPrivateKey, bytes]:
    """The one key of every bench leaf (``shared.key``, made once), and its PEM: issuing 2,500
    certificates costs a few seconds, minting 2,500 keys would cost minutes."""
    path = cert_dir / "shared.key"
    if not path.exists():
        key = new_key()
        path.write_bytes(data := key_pem(key))
        return key, data
    data = path.read_bytes()
    loaded = serialization.load_pem_private_key(data, None)  # about 50 ms: only when kept
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded, data


def _write_leaf(stem: Path, names: Sequence[str], key: tuple[rsa.RSAPrivateKey, bytes],
                issuer: Issuer) -> None:
    """A bench leaf (the factory's healthy profile, the shared key) and its chain at ``stem``."""
    serial = int.from_bytes(names[-1].encode()[:16].ljust(16, b"\0"), "big") >> 1
    cert = leaf_builder(names, key[0].public_key(), issuer.cert, serial=serial or 1, not_before=utc(2026),
                        not_after=utc(2040), org=BENCH_ORG, crl_url=BENCH_CRL_URL,
                        ).sign(issuer.key, hashes.SHA256())
    # write the key first: a chain without its key would be taken as complete next time
    Path(f"{stem}.key").write_bytes(key[1])
    Path(f"{stem}.pem").write_bytes(pem(cert, issuer.cert))
