"""Where fedscan's CPU goes: each stage of a scan run alone, in one process, on the bench lab.

``python -m bench.stages STATE.json OUT.json``: STATE is the lab's state file. The stages run one
after another in this one process, each measured with ``time.process_time`` around exactly
that work (the bench runs this three times and keeps the minimum of each figure, so the
figures of one table may come from different runs):

* ``imports``: importing everything a scan needs, from the first line of this module
  (interpreter start-up excluded; ``python -X importtime`` of a real one-domain scan is the
  bench's other import figure);
* ``dns``: :func:`scanner.discovery.discover` of every lab domain, all services — the questions
  a scan asks, nothing else;
* ``floor handshakes``: :func:`bench.floor.run` in this process, the reference;
* ``handshakes``: :func:`scanner.handshake.handshake` of every endpoint discovery found, at the
  bench's concurrency (STARTTLS, chain capture, the TLS 1.3 client-certificate probe, polite close);
* ``verification``: :meth:`scanner.verify.Verifier.verify` of every chain against the identities
  a scan would check, with one Verifier built for the stage as a scan builds one, caches cold
  (as in a scan's first sight of each certificate).

The rest of a full run — scheduling those stages together, building results, writing JSON — is
the full run's CPU minus these; :mod:`bench.__main__` prints it. The point of the table is the
budget: what a target like "fedscan <= 1.3 x the floor" leaves for everything that is not a
handshake.
"""

from __future__ import annotations

import time

T0 = time.process_time()
import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import trio  # noqa: E402

import scanner.cli  # noqa: E402, F401  (what `fedscan scan` imports before it starts)
from scanner.deployment import Deployment  # noqa: E402
from scanner.discovery import discover, make_resolver, parse_nameserver  # noqa: E402
from scanner.handshake import HandshakeResult, Target, handshake  # noqa: E402
from scanner.judge import identities_for  # noqa: E402
from scanner.limits import census_gc  # noqa: E402
from scanner.srv import DEFAULT_SERVICES, Endpoint  # noqa: E402
from scanner.trust import load_ca_file  # noqa: E402
from scanner.verify import Policy, Verifier  # noqa: E402

IMPORTS = time.process_time() - T0
AT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _cpu(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.process_time()
    out = fn(*args)
    return time.process_time() - start, out


async def _handshakes(endpoints: list[Endpoint], concurrency: int,
                      timeout: float) -> list[tuple[Endpoint, HandshakeResult]]:
    limiter = trio.CapacityLimiter(concurrency)
    out: list[tuple[Endpoint, HandshakeResult]] = []

    async def one(e: Endpoint) -> None:
        async with limiter:
            target = Target(e.service, e.target, e.port, e.address, e.xmpp_domain)
            out.append((e, await handshake(target, timeout=timeout)))

    async with trio.open_nursery() as nursery:
        for e in endpoints:
            nursery.start_soon(one, e)
    return out


def measure(state: dict[str, Any], concurrency: int, timeout: float) -> dict[str, Any]:
    from bench import floor

    resolver = make_resolver([parse_nameserver(state["nameserver"])], timeout=min(timeout, 5.0))
    domains = state["domains"]
    dns_cpu, found = _cpu(trio.run, lambda: discover(domains, DEFAULT_SERVICES, resolver,
                                                     concurrency=concurrency))
    endpoints = [e for f in found for e in f.endpoints]
    questions = len(domains) * len(DEFAULT_SERVICES) + 2 * len({e.target for e in endpoints})

    floor_cpu, _ = _cpu(trio.run, floor.run, state["endpoints"], concurrency, timeout)
    hs_cpu, shakes = _cpu(trio.run, _handshakes, endpoints, concurrency, timeout)

    trust = load_ca_file(Path(state["ca_file"]))
    policy, deployment = Policy(), Deployment()
    chains = [(e, s.chain) for e, s in shakes if s.chain]

    def verify_all() -> int:
        verifier = Verifier(trust, AT, policy)  # one per run, as a scan has
        for e, chain in chains:
            verifier.verify(chain, identities_for(e, deployment))
        return len(chains)

    verify_cpu, _ = _cpu(verify_all)
    return {
        "imports": IMPORTS,
        "dns": dns_cpu, "questions": questions,
        "floor_handshakes": floor_cpu, "handshakes": hs_cpu, "endpoints": len(endpoints),
        "verification": verify_cpu, "chains": len(chains),
        "distinct_leaves": len({c[0] for _, c in chains}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stages")
    parser.add_argument("state", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    state = json.loads(args.state.read_text())
    with census_gc():  # the collector as a scan runs it (scanner.live.run_scans)
        figures = measure(state, args.concurrency, args.timeout)
    args.out.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
