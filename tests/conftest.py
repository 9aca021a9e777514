"""Shared fixtures: the committed certificate corpus and the reference time it was made for."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from scanner.certload import load_pem_with_der
from scanner.certsummary import CertSummary
from scanner.isotime import parse_iso
from scanner.lab.hostile import hostile_world
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from scanner.names import Identity, IdentityKind
from scanner.trust import load_ca_file
from scanner.verify import TrustStore

if TYPE_CHECKING:  # imported where used: hostile_support imports this module
    from tests.hostile_support import HostileScan

ROOT = Path(__file__).resolve().parent.parent
CERTS = ROOT / "test-certs"
# The corpus is built for this instant (see test-certs/README.md); tests never read the clock.
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

# --- loopback nets: one /16 of 127.0.0.0/8 per test run -----------------------------------------
# Tests bind fixed addresses (a lab's /24, its DNS on .1). Two checkouts testing on one host at
# once must not collide, so each run takes a second octet of its own, held for the whole run by
# a socket bound to a marker address (a second run sees EADDRINUSE and picks another).
# FEDSCAN_TEST_OCTET forces one (e.g. to reproduce a run).
_OCTET_VAR = "FEDSCAN_TEST_OCTET"
_GUARDS: list[socket.socket] = []


def _pick_octet() -> int:
    if os.environ.get(_OCTET_VAR + "_HELD"):  # picked by this very process already
        return int(os.environ[_OCTET_VAR])
    forced = os.environ.get(_OCTET_VAR)
    for octet in [int(forced)] if forced else random.sample(range(100, 250), 150):
        guard = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            guard.bind((f"127.{octet}.255.254", 47999))
        except OSError:
            guard.close()
            continue
        _GUARDS.append(guard)
        os.environ[_OCTET_VAR], os.environ[_OCTET_VAR + "_HELD"] = str(octet), "1"
        return octet
    raise RuntimeError("no free 127.x.0.0/16 for the test labs")


OCTET = _pick_octet()


def pytest_sessionfinish() -> None:
    """Let go of the run's octet: closed here, not left to the interpreter's exit (where an
    unclosed socket is a ResourceWarning in every run)."""
    for guard in _GUARDS:
        guard.close()
    _GUARDS.clear()


def lab_net(third: int) -> str:
    """The /24 a test's lab uses this run: ``127.<run octet>.<third>``."""
    return f"127.{OCTET}.{third}"


CONTOSO_IDENTITIES = (
    Identity("sip.contoso.test", IdentityKind.SIP_NAMESPACE, "SIP domain contoso.test"),
    Identity("sip.fabrikam.test", IdentityKind.SIP_NAMESPACE, "SIP domain fabrikam.test"),
    Identity("contoso.test", IdentityKind.XMPP_DOMAIN, "XMPP domain"),
    Identity("fabrikam.test", IdentityKind.XMPP_DOMAIN, "XMPP domain"),
    Identity("webcon.contoso.test", IdentityKind.EXTRA, "web conferencing"),
)


def all_codes(domain: dict[str, Any]) -> list[str]:
    """Every finding code of a JSON domain (its own, its services', its endpoints'), sorted."""
    found = list(domain["findings"])
    for s in domain["services"]:
        found += s["findings"]
    for e in domain["endpoints"]:
        found += e["findings"]
    return sorted(f["code"] for f in found)


def cert_summary(**fields: Any) -> CertSummary:
    """A leaf summary for report-model tests: a healthy certificate unless ``fields`` say
    otherwise (``not_after`` may be given as ISO text)."""
    if isinstance(fields.get("not_after"), str):
        fields["not_after"] = parse_iso(fields["not_after"])
    values: dict[str, Any] = {
        "subject": "CN=sip.contoso.test", "subject_cns": ("sip.contoso.test",),
        "dns_names": ("sip.contoso.test",), "srv_names": (), "xmpp_addrs": (),
        "eku": ("serverAuth", "clientAuth"), "key": "RSA 2048", "signature": "sha256WithRSAEncryption",
        "issuer": "CN=Test CA", "serial": "1000", "sha256": "aa" * 32,
        "not_before": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "not_after": dt.datetime(2040, 1, 1, tzinfo=dt.UTC),
        "crl_distribution_points": ("http://crl.contoso.test/ca.crl",), "days_left": None,
    }
    return CertSummary(**{**values, **fields})


def pem_chain_der(name: str) -> list[bytes]:
    """The certificates of a corpus PEM file, as DER, in file order: the DER written in the
    file, as a server would send it (a fractional-second certificate's own, not its copy's)."""
    return [der for _, der in load_pem_with_der((CERTS / name).read_bytes())]


@pytest.fixture(scope="session")
def test_trust() -> TrustStore:
    return load_ca_file(CERTS / "ca-bundle.pem")


@pytest.fixture(scope="session")
def hostile_lab() -> Iterator[LabInfo]:
    with lab_in_thread(net=lab_net(60), world=hostile_world()) as info:
        yield info


@pytest.fixture(scope="session")
def hostile_scan(hostile_lab: LabInfo) -> HostileScan:
    from tests.hostile_support import AT, TIMEOUT, HostileScan

    begin = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", *hostile_lab.scan_args(), *AT,
         "--timeout", str(TIMEOUT), "--format", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    wall = time.monotonic() - begin
    return HostileScan(json.loads(proc.stdout), proc.returncode, proc.stderr, wall)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabInfo]:
    """The default lab world on lab_net(9), shared by the whole session (read-only use)."""
    with lab_in_thread(net=lab_net(9)) as info:
        yield info


# --- test tiers -------------------------------------------------------------------------------
# `make test-unit` runs the pure tier alone (seconds); `make test` runs all three. A module is
# "unit" unless listed here: list a new module that starts the lab or opens sockets as "lab",
# one that drives a real server (prosody, kamailio, unbound, chromium...) as "interop".
LAB_MODULES = frozenset({
    "test_acceptance_lab", "test_bad_input", "test_codes_real_input", "test_discovery",
    "test_handshake", "test_history",
    "test_hostile_dns", "test_hostile_scale", "test_hostile_tls", "test_hostile_xmpp", "test_lab_pki",
    "test_monitor", "test_nagios", "test_prometheus", "test_readiness", "test_report_merge",
    "test_scale_lab", "test_scan_lab", "test_wrong_answers",
    "test_readiness_verdict", "test_report_html", "test_shard_recipe", "test_hostile_strings",
    "test_dane_lab", "test_lab_real_chains", "test_limits", "test_one_voice", "test_resume_lab",
})


def _tier(module: str) -> str:
    if module.startswith("test_interop"):
        return "interop"
    return "lab" if module in LAB_MODULES else "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(getattr(pytest.mark, _tier(item.path.stem)))


def require_program(name: str, package: str) -> str:
    """The path of a real server or tool an interop test drives.

    Missing, the test is skipped with a reason `-rs` shows; but where CI installs it (.ci/run as
    root), a missing program is a failure: a green run must never mean "the interop tier did
    not run".
    """
    found = shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.access(p := f"{d}/{name}", os.X_OK)), None
    )
    if found is not None:
        return found
    reason = f"{name} is not installed (.ci/run installs Debian's {package})"
    if os.environ.get("CI") == "true" and os.geteuid() == 0:
        pytest.fail(f"{reason}, yet this is CI as root, where .ci/run should have installed it")
    pytest.skip(reason)


def browser_dom(page: Path, profile: Path, fragment: str = "") -> str:
    """The DOM of ``page`` after headless Chromium loaded it and ran its scripts (a profile of
    its own: other Chromium runs may be going on at the same time)."""
    import subprocess

    chromium = require_program("chromium", "chromium")
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
