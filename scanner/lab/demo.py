"""``fedscan demo`` (and ``make demo``): start the lab as its own process, scan it, show, stop.

Three real scans through the real CLI, each in a process of its own as a user runs them: every
lab domain as a federation partner sees it, the consolidated contoso/fabrikam Edge against
every namespace it serves, and an acceptance scan: our Edge's certificate (a PFX) presented to
two lab partners, one that accepts it and one that does not federate with our domain. The demo
succeeds when the scans ran and reported what the lab is built to show (CRITICAL, OK, then
CRITICAL for the refusal). Nothing here reads the source tree: it works from an installed
wheel, in any directory.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scanner.lab.partners import acceptance_files
from scanner.lab.pki import LabPki
from scanner.lab.run import LabInfo
from scanner.lab.zones import OWN_EDGE_ARGS, OWN_EDGE_DOMAINS

START_SECONDS = 60.0  # the first run also makes the lab's certificates (about a second)


class DemoError(Exception):
    """The lab did not come up; the message says why (its own error is on stderr above)."""


def _wait_for(path: Path, lab: subprocess.Popen[bytes]) -> LabInfo:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if path.exists():
            return LabInfo.from_json(json.loads(path.read_text()))
        if lab.poll() is not None:
            raise DemoError(f"demo: the lab exited with {lab.returncode} before it was ready")
        time.sleep(0.05)
    raise DemoError(f"demo: the lab did not start within {START_SECONDS:.0f} s")


def _scan(title: str, args: list[str]) -> int:
    print(f"\n$ {shlex.join(['fedscan', 'scan', *args])}\n# {title}", flush=True)
    return subprocess.run([sys.executable, "-m", "scanner", "scan", *args], check=False).returncode


def run_demo(net: str = "127.77.1") -> int:
    with tempfile.TemporaryDirectory(prefix="fedscan-demo-") as tmp:
        state = Path(tmp) / "lab.json"
        lab = subprocess.Popen(
            [sys.executable, "-m", "scanner", "lab", "--net", net, "--state-file", str(state)],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            info = _wait_for(state, lab)
            partners = _scan("every lab domain, as a federation partner sees it", info.scan_args())
            own = _scan(
                "our consolidated Edge, against every namespace it serves",
                [*info.scan_args(OWN_EDGE_DOMAINS), *OWN_EDGE_ARGS],
            )
            assert info.certs is not None
            pfx = acceptance_files(LabPki(info.certs)).pfx
            accepted = _scan(
                "will partners accept our certificate? (our Edge's PFX, presented as the Edge does)",
                [*info.scan_args(["adventureworks.test", "wideworldimporters.test"]), "--as-edge", str(pfx),
                 "--password", "fedscan", "--sip-domain", "contoso.test", "--xmpp-domain",
                 "contoso.test"],
            )
        finally:
            lab.terminate()
            lab.wait(10)
    print(
        f"\ndemo: partner scan exited {partners} (2 = CRITICAL: the lab has broken domains), "
        f"own-Edge scan exited {own} (0 = OK), acceptance scan exited {accepted} (2 = CRITICAL: "
        "wideworldimporters.test does not federate with contoso.test)",
        flush=True,
    )
    return 0 if (partners, own, accepted) == (2, 0, 2) else 1


if __name__ == "__main__":
    raise SystemExit(run_demo())
