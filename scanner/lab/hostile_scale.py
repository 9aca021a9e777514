"""A generated world for scale under hostility: many healthy domains with misbehaving ones
spread among them, to prove that hostile peers cost their own deadline and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from scanner.findings import Status
from scanner.lab.behaviours import (
    BILLION_LAUGHS,
    SSH_BANNER,
    CloseOnAccept,
    Drip,
    InjectAfterProceed,
    ResetMidHandshake,
    Scripted,
    SilentOnAccept,
    xmpp_header,
)
from scanner.lab.hostile_pki import hostile_pki
from scanner.lab.listeners import (
    Behaviour,
)
from scanner.lab.wire import HANDSHAKE_FAILURE_ALERT, server_hello_tls12, tls_record
from scanner.lab.zones import SIP, XMPP, LabDomain, LabWorld, Listener, Srv

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
        HostileGroup("drip", Drip(tls_record(22, server_hello_tls12()), 0.5), Drip(xmpp_header(), 0.5),
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


def hostile_scale_world(domains: int = 125, nodes: int = 4, hostile_every: int = 10,
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
