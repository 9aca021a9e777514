"""The floor + DNS: the DNS questions a scan asks, through dnspython and nothing else, then the
floor's bare handshakes (:mod:`bench.floor`).

``python -m bench.floor_dns DOMAINS.txt TARGETS.json OUT.json --nameserver HOST:PORT``: for every
domain the three SRV questions of fedscan's default services, and A and AAAA of every SRV
target (each host asked once, as fedscan's address cache does), at ``--dns-concurrency``
questions at once on dnspython's trio resolver configured as fedscan configures it; then the
floor's connects, STARTTLS and handshakes of the lab's pre-resolved endpoints at
``--concurrency``. No judging of answers, no verification, no output but the fingerprints.

This is the fair floor for a tool that must ask DNS with the project's chosen stack: the gap
between it and fedscan is fedscan's own work (scheduling, judging, reporting), not the stack's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import trio

from bench import floor

SRV_PREFIXES = ("_sipfederationtls._tcp", "_xmpp-server._tcp", "_xmpps-server._tcp")


def resolver(nameserver: str, timeout: float) -> dns.asyncresolver.Resolver:
    host, _, port = nameserver.rpartition(":")
    r = dns.asyncresolver.Resolver(configure=False)
    r.nameservers = [dns.nameserver.Do53Nameserver(host, int(port))]
    r.lifetime = timeout
    r.timeout = timeout / 2
    r.cache = None
    return r


async def questions(domains: list[str], res: dns.asyncresolver.Resolver,
                    concurrency: int) -> dict[str, int]:
    limiter = trio.CapacityLimiter(concurrency)
    asked: set[str] = set()
    counts = {"questions": 0, "answers": 0}

    async def ask(name: str, rdtype: str) -> list[Any]:
        counts["questions"] += 1
        async with limiter:
            try:
                answer = await res.resolve(dns.name.from_text(name), dns.rdatatype.from_text(rdtype),
                                           search=False)
            except dns.exception.DNSException:
                return []
        counts["answers"] += 1
        return list(answer.rrset or [])

    async def address(host: str) -> None:
        async with trio.open_nursery() as nursery:
            for rdtype in ("A", "AAAA"):
                nursery.start_soon(ask, host, rdtype)

    async def service(domain: str, prefix: str) -> None:
        records = await ask(f"{prefix}.{domain}.", "SRV")
        async with trio.open_nursery() as nursery:
            for rd in records:
                host = rd.target.to_text()
                if host not in asked:
                    asked.add(host)
                    nursery.start_soon(address, host)

    async with trio.open_nursery() as nursery:
        for domain in domains:
            for prefix in SRV_PREFIXES:
                nursery.start_soon(service, domain, prefix)
    return counts


async def run(domains: list[str], targets: list[dict[str, Any]], nameserver: str,
              dns_concurrency: int, concurrency: int, timeout: float) -> dict[str, Any]:
    counts = await questions(domains, resolver(nameserver, min(timeout, 5.0)), dns_concurrency)
    prints = await floor.run(targets, concurrency, timeout)
    return {"prints": prints, **counts}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_dns")
    parser.add_argument("domains", type=Path)
    parser.add_argument("targets", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--nameserver", required=True)
    parser.add_argument("--dns-concurrency", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    domains = [d for d in args.domains.read_text().split() if d]
    targets = json.loads(args.targets.read_text())
    result = trio.run(run, domains, targets, args.nameserver, args.dns_concurrency,
                      args.concurrency, args.timeout)
    args.out.write_text(json.dumps(result["prints"]))
    args.out.with_suffix(".dns.json").write_text(
        json.dumps({"questions": result["questions"], "answers": result["answers"]}))


if __name__ == "__main__":
    main()
