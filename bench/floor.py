"""The floor: the same TCP connects, XMPP STARTTLS exchanges and TLS handshakes as a scan, and
nothing else — no DNS, no verification, no output beyond the leaf fingerprints.

``python -m bench.floor TARGETS.json OUT.json --concurrency 64 --timeout 10``: TARGETS is the
lab's pre-resolved endpoint list; OUT maps ``address:port`` to the leaf's SHA-256 (or null).
The TLS client is configured like fedscan's (no verification, TLS 1.0+, ``@SECLEVEL=0``), so
the server does the same work for both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import ssl
import warnings
from pathlib import Path
from typing import Any

import trio

STREAM_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'>"
)
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
MAX_PLAINTEXT = 65536


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


async def _read_until(stream: trio.abc.Stream, marker: bytes) -> None:
    buffer = b""
    while marker not in buffer:
        chunk = await stream.receive_some(8192)
        if not chunk or len(buffer) > MAX_PLAINTEXT:
            raise trio.BrokenResourceError("stream ended before " + marker.decode())
        buffer += chunk


async def one(target: dict[str, Any], ctx: ssl.SSLContext, timeout: float) -> str | None:
    stream: trio.abc.Stream | None = None
    try:
        with trio.move_on_after(timeout):
            stream = await trio.open_tcp_stream(target["address"], target["port"])
            if target["service"] == "xmpp-server":
                await stream.send_all(STREAM_HEADER.format(to=target["xmpp_domain"]).encode())
                await _read_until(stream, b"</stream:features>")
                await stream.send_all(STARTTLS)
                await _read_until(stream, b"<proceed")
            tls = trio.SSLStream(stream, ctx, server_hostname=target["sni"], https_compatible=True)
            stream = tls
            await tls.do_handshake()
            der = tls.getpeercert(binary_form=True)
            return hashlib.sha256(der).hexdigest() if der else None
    except (OSError, trio.BrokenResourceError):
        return None
    finally:
        if stream is not None:
            await trio.aclose_forcefully(stream)
    return None


async def run(targets: list[dict[str, Any]], concurrency: int, timeout: float) -> dict[str, str | None]:
    limiter = trio.CapacityLimiter(concurrency)
    ctx = client_context()  # one context for all: the floor pays for nothing it can avoid
    out: dict[str, str | None] = {}

    async def task(target: dict[str, Any]) -> None:
        async with limiter:
            out[f"{target['address']}:{target['port']}"] = await one(target, ctx, timeout)

    async with trio.open_nursery() as nursery:
        for target in targets:
            nursery.start_soon(task, target)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("targets", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    targets = json.loads(args.targets.read_text())
    result = trio.run(run, targets, args.concurrency, args.timeout)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
