"""sslyze, certificate info only, on the same pre-resolved endpoints.

The sslyze 6 CLI takes one ``--starttls`` and one ``--xmpp_to`` per run, so SIP (direct TLS)
and XMPP (``--starttls xmpp_server``) are two runs, started side by side. Targets use the
``host:port{ip}`` syntax, so sslyze connects to the lab address and sends ``host`` as SNI: the
SRV target for SIP and the XMPP domain for XMPP, which is also the stream's ``to`` (sslyze's
default ``--xmpp_to`` is the target's hostname), exactly what fedscan does.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BASE = ["--certinfo", "--mozilla_config=disable", "--quiet"]


def available(python: Path) -> str | None:
    """None if ``python`` can run sslyze, else why not.

    sslyze lives in a venv of its own (``make bench`` makes ``.venv-sslyze``): sslyze 6
    requires ``cryptography<47``, and installed beside fedscan it silently downgraded the
    cryptography fedscan was measured with (50 -> 46) — and its nassl, the OpenSSL build it
    ships, had no business in fedscan's environment either.
    """
    if not python.exists():
        return f"{python} does not exist; `make bench` creates it"
    probe = subprocess.run([str(python), "-c", "import sslyze"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"{python} cannot import sslyze; `make bench` installs it"
    return None


def commands(endpoints: Sequence[dict[str, Any]], ca_file: str, workdir: Path,
             python: Path) -> list[list[str]]:
    """The sslyze command lines (one per STARTTLS flavour) for ``endpoints``."""
    out = []
    for service, extra in (("sip-federation", []), ("xmpp-server", ["--starttls", "xmpp_server"])):
        lines = [f"{e['sni']}:{e['port']}{{{e['address']}}}" for e in endpoints if e["service"] == service]
        if not lines:
            continue
        targets = workdir / f"sslyze-{service}.txt"
        targets.write_text("\n".join(lines) + "\n")
        out.append([
            str(python), "-m", "sslyze", *BASE, *extra, f"--certinfo_ca_file={ca_file}",
            f"--targets_in={targets}", f"--json_out={workdir / f'sslyze-{service}.json'}",
        ])
    return out


def fingerprints(workdir: Path) -> dict[str, str | None]:
    """``address:port`` -> SHA-256 of the leaf sslyze received (first deployment)."""
    out: dict[str, str | None] = {}
    for path in sorted(workdir.glob("sslyze-*.json")):
        doc = json.loads(path.read_text())
        for server in doc.get("server_scan_results", []):
            loc = server["server_location"]
            key = f"{loc['ip_address']}:{loc['port']}"
            out[key] = _leaf_sha256(server)
    return out


def _leaf_sha256(server: dict[str, Any]) -> str | None:
    attempt = (server.get("scan_result") or {}).get("certificate_info") or {}
    result = attempt.get("result") or {}
    for deployment in result.get("certificate_deployments", []):
        chain = deployment.get("received_certificate_chain") or []
        if chain:
            value = chain[0].get("fingerprint_sha256")  # base64 in sslyze 6's JSON
            return base64.b64decode(value).hex() if value else None
    return None
