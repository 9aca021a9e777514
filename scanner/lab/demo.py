"""`make demo`: start the lab as its own process, scan it as a user would, show, stop.

Three real scans through the real CLI: every lab domain as a federation partner sees it, the
consolidated contoso/fabrikam Edge against every namespace it serves, and an acceptance scan:
our Edge's certificate presented to two lab partners, one that accepts it and one that refuses
our domain. The demo succeeds when the scans ran and reported what the lab is built to show
(CRITICAL, OK, then CRITICAL for the refusal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scanner.lab.run import LabInfo
from scanner.lab.zones import CERTS, OWN_EDGE_ARGS, OWN_EDGE_DOMAINS


def _wait_for(path: Path, lab: subprocess.Popen[bytes], seconds: float = 30) -> LabInfo:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return LabInfo.from_json(json.loads(path.read_text()))
        if lab.poll() is not None:
            raise SystemExit(f"demo: the lab exited with {lab.returncode}")
        time.sleep(0.05)
    raise SystemExit("demo: the lab did not start within 30 s")


def _scan(title: str, args: list[str]) -> int:
    print(f"\n$ fedscan scan {' '.join(args)}\n# {title}", flush=True)
    return subprocess.run([sys.executable, "-m", "scanner", "scan", *args], check=False).returncode


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "lab.json"
        lab = subprocess.Popen(
            [sys.executable, "-m", "scanner", "lab", "--net", "127.77.1", "--state-file", str(state)],
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
            accepted = _scan(
                "will partners accept our certificate? (our Edge's PFX, presented as the Edge does)",
                [*info.scan_args(["relecloud.test", "woodgrove.test"]), "--as-edge",
                 str(CERTS / "edge.pfx"), "--password", "fedscan", "--sip-domain", "contoso.test",
                 "--xmpp-domain", "contoso.test"],
            )
        finally:
            lab.terminate()
            lab.wait(10)
    print(
        f"\ndemo: partner scan exited {partners} (2 = CRITICAL: the lab has broken domains), "
        f"own-Edge scan exited {own} (0 = OK), acceptance scan exited {accepted} (2 = CRITICAL: "
        "woodgrove.test does not federate with contoso.test)"
    )
    return 0 if (partners, own, accepted) == (2, 0, 2) else 1


if __name__ == "__main__":
    raise SystemExit(main())
