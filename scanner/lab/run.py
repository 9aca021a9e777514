"""Start the lab: every listener of the world, then a DNS responder that points at them.

Listeners bind first (ephemeral ports), so the SRV records can carry the real ports; the DNS
responder starts last, with records built from what was bound. Everything is on loopback.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio

from scanner.lab.dns import serve_dns
from scanner.lab.listeners import (
    DEFAULT_BEHAVIOUR,
    serve_sip_tls,
    serve_xmpp_starttls,
    serve_xmpps,
)
from scanner.lab.zones import (
    CERTS,
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
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabInfo:
        from scanner.findings import Status

        domains = tuple(
            LabDomain(d["domain"], d["story"], Status[d["status"]], tuple(d["codes"]))
            for d in data["domains"]
        )
        return cls(data["nameserver"], Path(data["ca_file"]), data["net"], domains, data["ports"])


def _records(world: LabWorld, net: str, ports: Mapping[str, int]) -> dict[tuple[str, str], list[str]]:
    records: dict[tuple[str, str], list[str]] = {}
    for srv in world.srv:
        port = ports[srv.listener] if srv.listener else srv.port
        target = "." if srv.target == "." else srv.target + "."
        records.setdefault((srv.name, "SRV"), []).append(f"0 0 {port} {target}")
    for host, octets in world.hosts.items():
        records[(host, "A")] = [f"{net}.{o}" for o in octets]
    for host in world.ipv6_hosts:
        records[(host, "AAAA")] = [IPV6_LOOPBACK]
    for key, texts in world.records.items():
        records.setdefault(key, []).extend(_with_ports(t, ports) for t in texts)
    return records


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
    nursery: trio.Nursery, world: LabWorld, listener: Listener, address: str, port: int
) -> int:
    if listener.key in world.refused or listener.key in world.silent:
        how = _refusing_port if listener.key in world.refused else _silent_port
        bound_port: int = await nursery.start(how, address, port)
        return bound_port
    chain = CERTS / f"{listener.cert}.pem"  # an absolute listener.cert wins over CERTS
    key = CERTS / f"{listener.cert}.key"
    behaviour = world.behaviours.get(listener.key, DEFAULT_BEHAVIOUR)
    # a partner of an acceptance scan may trust another CA (scanner/lab/partners.py)
    ca: Path = getattr(behaviour, "client_ca_file", CERTS / "ca-bundle.pem")
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
    v6_octets = {o for h in world.ipv6_hosts for o in world.hosts[h]}
    async with trio.open_nursery() as nursery:
        ports: dict[str, int] = {}
        for listener in world.listeners:
            port = ports[listener.same_port_as] if listener.same_port_as else listener.port
            if listener.host in v6_octets:
                # the AAAA node listens on the same port as the A node (one SRV record)
                port = await _start_listener(nursery, world, listener, IPV6_LOOPBACK, port)
            ports[listener.key] = await _start_listener(
                nursery, world, listener, f"{net}.{listener.host}", port
            )
        records = _records(world, net, ports)
        dns_address = f"{net}.1"
        bound_dns: int = await nursery.start(
            partial(
                serve_dns,
                records,
                address=dns_address,
                port=dns_port,
                behaviours=world.dns_behaviours,
            )
        )
        task_status.started(
            LabInfo(f"{dns_address}:{bound_dns}", CERTS / "ca-bundle.pem", net, world.domains, ports)
        )


def describe(info: LabInfo) -> str:
    """What `fedscan lab` prints: where it is and what to try."""
    lines = [
        f"fedscan lab is running on {info.net}.0/24 (DNS {info.nameserver}); Ctrl-C stops it.",
        "",
        "Domains:",
    ]
    for d in info.domains:
        lines.append(f"  {d.domain:20} {d.status.name:9} {d.story}")
    lines += [
        "",
        "Scan every lab domain as a partner would:",
        f"  {info.scan_command()}",
        "",
        "Scan your own consolidated Edge against every namespace it serves:",
        "  " + shlex.join(["fedscan", "scan", *info.scan_args(OWN_EDGE_DOMAINS), *OWN_EDGE_ARGS]),
        "",
        "Will partners accept our certificate? Present it to each lab partner (--as-edge):",
    ]
    from scanner.lab.partners import ACCEPTANCE_CASES

    for case in ACCEPTANCE_CASES:
        lines.append(f"  # {case.domain}: {case.story} -> {case.status.name}")
        lines.append("  " + shlex.join(["fedscan", "scan", *info.scan_args([case.domain]),
                                        *case.args()]))
    return "\n".join(lines)


def write_state(path: Path, info: LabInfo) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(info.to_json(), indent=2))
    tmp.replace(path)


def serve_lab(net: str, dns_port: int, state_file: Path | None) -> None:
    """``fedscan lab``: serve in the foreground until SIGINT/SIGTERM."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            info = await nursery.start(lambda task_status: run_lab(net=net, dns_port=dns_port,
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
