"""A real validating resolver for the lab: Debian's unbound, on loopback, with its own config.

Theory of this module
---------------------
The DANE tests must see the AD bit and SERVFAIL from a validator that is not ours, so this
starts ``unbound`` itself (never the system service): a config, pidfile and log in a
temporary directory, ``username: ""`` and ``chroot: ""`` (no privilege drop, no chroot), one
``stub-zone`` per lab zone pointing at the lab's DNS, and the lab's DNSKEYs as
``trust-anchor``. No root anchor and no root hints are reachable, so names outside the
anchored zones validate as *insecure*, which is exactly how an unsigned zone looks.
``local-zone: "<tld>" nodefault`` lifts unbound's built-in RFC 6761 answers for ``test.``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from scanner.lab.process import stop as _stop

UNBOUND = shutil.which("unbound") or next(
    (p for p in ("/usr/sbin/unbound",) if Path(p).exists()), None
)
START_SECONDS = 15.0


class UnboundError(RuntimeError):
    """unbound could not be started (the message carries the end of its log)."""


def free_port(address: str) -> int:
    """A port free on ``address`` for both UDP and TCP (unbound binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
                return port
    raise OSError(f"no port free for UDP and TCP on {address}")


def config_text(
    workdir: Path, address: str, port: int, stubs: Sequence[tuple[str, str, int]],
    anchors: Sequence[str],
) -> str:
    """unbound.conf: ``stubs`` are (zone, lab DNS address, lab DNS port)."""
    lines = [
        "server:",
        f'  interface: {address}@{port}',
        f"  port: {port}",
        "  do-ip6: no",
        "  do-not-query-localhost: no",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{workdir}"',
        f'  pidfile: "{workdir}/unbound.pid"',
        f'  logfile: "{workdir}/unbound.log"',
        "  use-syslog: no",
        "  verbosity: 1",
        "  val-log-level: 2",
        "  num-threads: 1",
        '  module-config: "validator iterator"',
        "  val-permissive-mode: no",
        "  qname-minimisation: no",
        "  access-control: 127.0.0.0/8 allow",
        "  cache-max-ttl: 0",
        "  cache-max-negative-ttl: 0",
    ]
    for tld in sorted({zone.rstrip(".").rsplit(".", 1)[-1] for zone, _, _ in stubs}):
        lines.append(f'  local-zone: "{tld}." nodefault')
    lines += [f'  trust-anchor: "{a}"' for a in anchors]
    for zone, stub_address, stub_port in stubs:
        lines += ["stub-zone:", f'  name: "{zone.rstrip(".")}."', f"  stub-addr: {stub_address}@{stub_port}"]
    lines += ["remote-control:", "  control-enable: no", ""]
    return "\n".join(lines)


@contextmanager
def validating_resolver(
    workdir: Path, stubs: Sequence[tuple[str, str, int]], anchors: Sequence[str],
    *, address: str = "127.0.0.1",
) -> Iterator[tuple[str, int]]:
    """Run unbound until the block ends; yields its (address, port)."""
    if UNBOUND is None:
        raise UnboundError("the unbound binary is not installed")
    port = free_port(address)
    config = workdir / "unbound.conf"
    config.write_text(config_text(workdir, address, port, stubs, anchors))
    checkconf = shutil.which("unbound-checkconf")
    if checkconf:
        check = subprocess.run([checkconf, str(config)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise UnboundError(f"unbound-checkconf: {check.stdout.strip()} {check.stderr.strip()}")
    with (workdir / "console.log").open("wb") as console:
        # -d: stay in the foreground, so this process *is* unbound and stops by its pid
        process = subprocess.Popen([UNBOUND, "-d", "-c", str(config)], cwd=workdir,
                                   stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
    try:
        _wait_listening(process, workdir, address, port)
        yield address, port
    finally:
        _stop(process)


def log_tail(workdir: Path, lines: int = 30) -> str:
    parts = []
    for name in ("unbound.log", "console.log"):
        path = workdir / name
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {name} ---\n" + "\n".join(text))
    return "\n".join(parts)


def _wait_listening(process: subprocess.Popen[bytes], workdir: Path, address: str, port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UnboundError(f"unbound exited with status {process.returncode}\n{log_tail(workdir)}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    _stop(process)
    raise UnboundError(f"unbound did not listen on {address}:{port}\n{log_tail(workdir)}")

