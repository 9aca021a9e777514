"""The scale lab in its own process, so that its CPU is never charged to the tool measured.

``python -m bench.lab --endpoints N --state FILE`` serves :func:`scanner.lab.scale.scale_world`
with :func:`scanner.lab.run.run_lab` (dead endpoints included), writes FILE
(JSON: the lab's nameserver, CA file, domains and pre-resolved endpoints) once everything
listens, and serves until SIGTERM/SIGINT. ``--rtt MS`` holds every answer back by a round-trip
time; ``--hosted N`` serves instead :func:`scanner.lab.scale.hosted_world` (one address, N
domains) and, when stopped, writes the most connections it ever had open at once to
``FILE.counter``.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
from pathlib import Path

import trio

from scanner.lab.run import run_lab
from scanner.lab.scale import DEFAULT_BASE_PORT, hosted_world, scale_world
from scanner.lab.zones import LabWorld

DEFAULT_NET = "127.78.0"
DEFAULT_CERT_DIR = Path("/tmp/fedscan-bench-certs")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lab")
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--dead", type=float, default=0.0, help="fraction of silent endpoints")
    parser.add_argument("--net", default=DEFAULT_NET)
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    parser.add_argument("--cert-dir", type=Path, default=DEFAULT_CERT_DIR)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--rtt", type=float, default=0.0, help="milliseconds per round trip")
    parser.add_argument("--hosted", type=int, default=0, help="serve N domains on one address")
    args = parser.parse_args(argv)
    raise_fd_limit()
    rtt = args.rtt / 1000
    world: LabWorld
    endpoints: list[dict[str, object]] = []
    if args.hosted:
        hosted = hosted_world(args.hosted, args.cert_dir, rtt=rtt, base_port=args.base_port)
        world, domains = hosted.world, hosted.domains
    else:
        lab = scale_world(args.endpoints, args.cert_dir, dead_fraction=args.dead,
                          base_port=args.base_port, rtt=rtt)
        world, domains = lab.world, lab.domains
        endpoints = [e.to_json(args.net) for e in lab.endpoints]

    async def serve() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                info = await nursery.start(
                    lambda task_status: run_lab(net=args.net, world=world, task_status=task_status)
                )
                state = {
                    "nameserver": info.nameserver,
                    "ca_file": str(info.ca_file),
                    "net": args.net,
                    "domains": domains,
                    "endpoints": endpoints,
                }
                tmp = args.state.with_suffix(".tmp")
                tmp.write_text(json.dumps(state))
                tmp.replace(args.state)
                async for _ in signals:
                    break
                nursery.cancel_scope.cancel()

    trio.run(serve)
    if args.hosted:
        counter = {"peak": hosted.counter.peak, "accepted": hosted.counter.accepted}
        args.state.with_suffix(".counter").write_text(json.dumps(counter))


if __name__ == "__main__":
    main()
