"""``fedscan lab`` and ``fedscan demo``, and the lab's start-up errors, in words that name the
real cause.

The lab is the only part of fedscan that binds sockets and writes files of its own (its
certificates, :mod:`scanner.lab.pki`), so "cannot start the lab" has several causes, each with
its own remedy: an address in use, an address that is not local, a privileged port, a cache
directory that cannot be written. :func:`lab_start_error` tells them apart.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated

import typer

from scanner.cli_common import UserError, app


def lab_start_error(exc: BaseException, net: str) -> str:
    """One line for a failure to start the lab (``exc``: the first leaf of the group)."""
    from scanner.lab.pki import LabPkiError

    if isinstance(exc, LabPkiError):
        return f"cannot start the lab: {exc}"
    if not isinstance(exc, OSError):
        return f"cannot start the lab: {exc}"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot start the lab: an address in {net}.0/24 is already in use (another lab, or a "
                "server listening on all addresses, e.g. an XMPP server on 5269? try another --net "
                "or stop it)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot start the lab: {net}.0/24 is not a local address here (the loopback "
                "interface must be up and own 127.0.0.0/8)")
    if exc.errno == errno.EACCES and exc.filename is None:
        return "cannot start the lab: permission denied binding a port (ports below 1024 need root)"
    if exc.filename is not None:
        return f"cannot start the lab: {exc.filename}: {exc.strerror or exc}"
    return f"cannot start the lab: {exc.strerror or exc}"


@app.command()
def lab(
    net: Annotated[
        str, typer.Option("--net", metavar="A.B.C", help="First three octets of the lab's 127.x.y.0/24.")
    ] = "127.77.0",
    dns_port: Annotated[int, typer.Option("--dns-port", min=0, max=65535, metavar="PORT",
        help="DNS port (0: any).")] = 0,
    state_file: Annotated[
        Path | None, typer.Option("--state-file", metavar="FILE",
            help="Write where the lab is (JSON) for scripts.")
    ] = None,
    hostile: Annotated[
        bool,
        typer.Option("--hostile", help="Serve the misbehaving peers of the README's 'Hostile and broken "
                     "peers' table (one domain each) instead of the federation situations."),
    ] = False,
) -> None:
    """Run the embedded loopback lab in the foreground and print the scan line to try."""
    from scanner.lab.pki import LabPkiError
    from scanner.lab.run import serve_lab

    if not net.startswith("127.") or net.count(".") != 2:
        raise UserError(f"--net must be three octets inside 127.0.0.0/8, e.g. 127.77.0 (got {net!r})")
    try:
        serve_lab(net, dns_port, state_file, hostile=hostile)
    except* (OSError, LabPkiError) as group:
        exc: BaseException = group.exceptions[0]
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        raise UserError(lab_start_error(exc, net)) from None


@app.command()
def demo(
    net: Annotated[
        str, typer.Option("--net", metavar="A.B.C", help="First three octets of the lab's 127.x.y.0/24.")
    ] = "127.77.1",
) -> None:
    """Start the lab, scan it as a partner and as your own Edge would be checked, print both, stop.

    Exit 0 when both scans reported what the lab is built to show (the partner view CRITICAL,
    the consolidated Edge OK), 1 otherwise.
    """
    from scanner.lab.demo import DemoError, run_demo

    if not net.startswith("127.") or net.count(".") != 2:
        raise UserError(f"--net must be three octets inside 127.0.0.0/8, e.g. 127.77.1 (got {net!r})")
    try:
        code = run_demo(net)
    except DemoError as exc:
        raise UserError(str(exc)) from None
    raise typer.Exit(code)
