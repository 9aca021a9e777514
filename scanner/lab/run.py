"""Start the lab: every listener of the world, then a DNS responder that points at them.

Listeners bind first (ephemeral ports), so the SRV records can carry the real ports; the DNS
responder starts last, with records built from what was bound. Everything is on loopback.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio

from scanner.lab.dane import expand_tlsa
from scanner.lab.dns import Zone, serve_dns
from scanner.lab.listeners import (
    DEFAULT_BEHAVIOUR,
    serve_sip_tls,
    serve_xmpp_starttls,
    serve_xmpps,
)
from scanner.lab.pki import LabPki, lab_pki
from scanner.lab.zones import (
    OWN_EDGE_ARGS,
    OWN_EDGE_DOMAINS,
    PORT_OF,
    LabDomain,
    LabWorld,
    Listener,
    default_world,
)

DEFAULT_NET = "127.77.0"
IPV6_LOOPBACK = "::1"


@dataclass(frozen=True)
class LabInfo:
    """What a scan needs to reach the lab."""

    nameserver: str
    ca_file: Path
    net: str
    domains: tuple[LabDomain, ...]
    ports: Mapping[str, int]
    certs: Path | None = None  # the lab's certificate directory (scanner.lab.pki)
    trust_anchors: tuple[str, ...] = ()  # DNSKEYs of the signed zones, for a validator
    zones: tuple[str, ...] = ()  # every zone the lab DNS is authoritative for (stub zones)

    @property
    def client_cert(self) -> Path:
        """A client certificate (clientAuth, issued by the lab CA) for ``--client-cert``."""
        return LabPki(self.certs or self.ca_file.parent).client_cert

    @property
    def client_key(self) -> Path:
        return LabPki(self.certs or self.ca_file.parent).client_key

    def scan_args(self, domains: Sequence[str] | None = None) -> list[str]:
        names = list(domains) if domains is not None else [d.domain for d in self.domains]
        return [*names, "--nameserver", self.nameserver, "--ca-file", str(self.ca_file)]

    def scan_command(self) -> str:
        return shlex.join(["fedscan", "scan", *self.scan_args()])

    def to_json(self) -> dict[str, Any]:
        return {
            "nameserver": self.nameserver,
            "ca_file": str(self.ca_file),
            "net": self.net,
            "scan_args": self.scan_args(),
            "domains": [
                {"domain": d.domain, "story": d.story, "status": d.status.name, "codes": list(d.codes)}
                for d in self.domains
            ],
            "ports": dict(self.ports),
            "certs": str(self.certs) if self.certs else None,
            "trust_anchors": list(self.trust_anchors),
            "zones": list(self.zones),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabInfo:
        from scanner.findings import Status

        domains = tuple(
            LabDomain(d["domain"], d["story"], Status[d["status"]], tuple(d["codes"]))
            for d in data["domains"]
        )
        certs = Path(data["certs"]) if data.get("certs") else None
        return cls(data["nameserver"], Path(data["ca_file"]), data["net"], domains, data["ports"], certs,
                   tuple(data.get("trust_anchors", ())), tuple(data.get("zones", ())))


def lab_address(net: str, host: int) -> str:
    """The address of lab host ``host`` on ``net`` (``a.b.c``): ``a.b.c.host`` up to 255; from
    256 on, the next /24s, 250 hosts each (``.2``-``.251``), for labs of thousands of nodes."""
    if host < 256:
        return f"{net}.{host}"
    a, b, c = net.split(".")
    index = host - 256
    return f"{a}.{b}.{int(c) + 1 + index // 250}.{2 + index % 250}"


def _records(
    world: LabWorld, net: str, ports: Mapping[str, int], pki: LabPki
) -> dict[tuple[str, str], list[str]]:
    records: dict[tuple[str, str], list[str]] = {}
    for srv in world.srv:
        port = ports[srv.listener] if srv.listener else srv.port
        target = "." if srv.target == "." else srv.target + "."
        records.setdefault((srv.name, "SRV"), []).append(f"0 0 {port} {target}")
    for host, octets in world.hosts.items():
        records[(host, "A")] = [lab_address(net, o) for o in octets]
    for host in world.ipv6_hosts:
        records[(host, "AAAA")] = [IPV6_LOOPBACK]
    for (owner, rdtype), texts in world.records.items():
        key = (_owner(owner, ports), rdtype)
        records.setdefault(key, []).extend(expand_tlsa(_with_ports(t, ports), pki.chain) for t in texts)
    return records


def _owner(owner: str, ports: Mapping[str, int]) -> str:
    """An owner name whose ``port-of:KEY`` label part becomes the bound port (TLSA owners)."""
    return re.sub(PORT_OF + r"([A-Za-z0-9-]+)", lambda m: str(ports[m[1]]), owner)


def _with_ports(text: str, ports: Mapping[str, int]) -> str:
    return " ".join(str(ports[w[len(PORT_OF) :]]) if w.startswith(PORT_OF) else w for w in text.split())


async def _refusing_port(address: str, port: int, task_status: trio.TaskStatus[int]) -> None:
    """A TCP port that is bound but never listens: the kernel refuses every connection."""
    with trio.socket.socket(trio.socket.AF_INET6 if ":" in address else trio.socket.AF_INET) as sock:
        await sock.bind((address, port))
        task_status.started(sock.getsockname()[1])
        await trio.sleep_forever()


async def _silent_port(address: str, port: int, task_status: trio.TaskStatus[int]) -> None:
    """A listening socket nobody accepts from: the kernel completes TCP, then nothing."""
    family = trio.socket.AF_INET6 if ":" in address else trio.socket.AF_INET
    with trio.socket.socket(family) as sock:
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
        await sock.bind((address, port))
        sock.listen(1024)
        task_status.started(sock.getsockname()[1])
        await trio.sleep_forever()


async def _start_listener(
    nursery: trio.Nursery, world: LabWorld, pki: LabPki, listener: Listener, address: str, port: int
) -> int:
    if listener.key in world.refused or listener.key in world.silent:
        how = _refusing_port if listener.key in world.refused else _silent_port
        bound_port: int = await nursery.start(how, address, port)
        return bound_port
    chain, key, ca = pki.chain(listener.cert), pki.key(listener.cert), pki.ca_file
    for path in (chain, key):
        if not path.is_file():
            raise FileNotFoundError(2, f"listener {listener.key!r}: no certificate file", str(path))
    behaviour = world.behaviours.get(listener.key, DEFAULT_BEHAVIOUR)
    trusts = getattr(behaviour, "client_ca", None)  # a partner that trusts another CA (partners.py)
    if trusts is not None:
        ca = await trio.to_thread.run_sync(trusts, pki)
    if listener.kind == "sip":
        serve = partial(serve_sip_tls, address, port, chain, key, client_ca_file=ca, behaviour=behaviour)
    elif listener.kind == "xmpps":
        serve = partial(serve_xmpps, address, port, chain, key, client_ca_file=ca, behaviour=behaviour)
    else:
        serve = partial(
            serve_xmpp_starttls,
            address,
            port,
            chain,
            key,
            domains=listener.xmpp_domains,
            client_ca_file=ca,
            behaviour=behaviour,
        )
    bound: int = await nursery.start(serve)
    return bound


async def run_lab(
    *,
    net: str = DEFAULT_NET,
    dns_port: int = 0,
    world: LabWorld | None = None,
    task_status: trio.TaskStatus[LabInfo] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the lab until cancelled; ``task_status.started`` gets the :class:`LabInfo`."""
    world = world or default_world()
    pki = await trio.to_thread.run_sync(lab_pki)
    v6_octets = {o for h in world.ipv6_hosts for o in world.hosts[h]}
    async with trio.open_nursery() as nursery:
        ports: dict[str, int] = {}
        for listener in world.listeners:
            port = ports[listener.same_port_as] if listener.same_port_as else listener.port
            if listener.host in v6_octets:
                # the AAAA node listens on the same port as the A node (one SRV record)
                port = await _start_listener(nursery, world, pki, listener, IPV6_LOOPBACK, port)
            ports[listener.key] = await _start_listener(
                nursery, world, pki, listener, lab_address(net, listener.host), port
            )
        records = _records(world, net, ports, pki)
        bogus = [_owner(b, ports) for b in world.bogus]
        zone = Zone.build(records, world.dns_behaviours, signed=world.signed, bogus=bogus)
        dns_address = f"{net}.1"
        bound_dns: int = await nursery.start(
            partial(serve_dns, {}, address=dns_address, port=dns_port, zone=zone,
                    delay=world.dns_delay)
        )
        anchors = zone.signed.trust_anchors() if zone.signed else ()
        zones = tuple(dict.fromkeys([*world.signed, *(d.domain for d in world.domains)]))
        task_status.started(
            LabInfo(f"{dns_address}:{bound_dns}", pki.ca_file, net, world.domains, ports, pki.dir,
                    anchors, zones)
        )


def describe(info: LabInfo) -> str:
    """What `fedscan lab` prints: where it is and what to try."""
    lines = [
        f"fedscan lab is running on {info.net}.0/24 (DNS {info.nameserver}); Ctrl-C stops it.",
        "",
        "Domains:",
    ]
    width = max([20, *(len(d.domain) for d in info.domains)])
    for d in info.domains:
        lines.append(f"  {d.domain:{width}} {d.status.name:9} {d.story}")
    lines += [
        "",
        "Scan every lab domain as a partner would:",
        f"  {info.scan_command()}",
    ]
    served = {d.domain for d in info.domains}
    if set(OWN_EDGE_DOMAINS) <= served:  # the default world (not --hostile)
        lines += [
            "",
            "Scan your own consolidated Edge against every namespace it serves:",
            "  " + shlex.join(["fedscan", "scan", *info.scan_args(OWN_EDGE_DOMAINS), *OWN_EDGE_ARGS]),
        ]
    if info.certs is not None and set(OWN_EDGE_DOMAINS) <= served:
        from scanner.lab.partners import ACCEPTANCE_CASES, PARTNERS, acceptance_files

        files = acceptance_files(LabPki(info.certs))
        lines += ["", "Partners that judge our certificate (contoso.test's Edge):"]
        lines += [f"  {p.domain:20} {p.story}" for p in PARTNERS]
        lines += ["", "Will partners accept our certificate? Present it to each lab partner (--as-edge):"]
        for case in ACCEPTANCE_CASES:
            lines.append(f"  # {case.domain}: {case.story} -> {case.status.name}")
            lines.append("  " + shlex.join(["fedscan", "scan", *info.scan_args([case.domain]),
                                            *case.args(files)]))
    return "\n".join(lines)


def write_state(path: Path, info: LabInfo) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(info.to_json(), indent=2))
    tmp.replace(path)


def serve_lab(net: str, dns_port: int, state_file: Path | None, *, hostile: bool = False) -> None:
    """``fedscan lab``: serve in the foreground until SIGINT/SIGTERM; ``hostile``: the
    misbehaving peers of :mod:`scanner.lab.hostile` instead of the default world."""
    world = None
    if hostile:
        from scanner.lab.hostile import hostile_world

        world = hostile_world()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            info = await nursery.start(lambda task_status: run_lab(net=net, dns_port=dns_port, world=world,
                                                                   task_status=task_status))
            print(describe(info), flush=True)
            if state_file is not None:
                write_state(state_file, info)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()

    trio.run(main)
    print("lab stopped", file=sys.stderr)
