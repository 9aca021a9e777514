"""Shared fixtures: the committed certificate corpus and the reference time it was made for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from scanner.certinfo import load_pem_certificates
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from scanner.names import Identity, IdentityKind
from scanner.trust import load_ca_file
from scanner.verify import TrustStore

ROOT = Path(__file__).resolve().parent.parent
CERTS = ROOT / "test-certs"
# The corpus is built for this instant (see test-certs/README.md); tests never read the clock.
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

CONTOSO_IDENTITIES = (
    Identity("sip.contoso.test", IdentityKind.SIP_NAMESPACE, "SIP domain contoso.test"),
    Identity("sip.fabrikam.test", IdentityKind.SIP_NAMESPACE, "SIP domain fabrikam.test"),
    Identity("contoso.test", IdentityKind.XMPP_DOMAIN, "XMPP domain"),
    Identity("fabrikam.test", IdentityKind.XMPP_DOMAIN, "XMPP domain"),
    Identity("webcon.contoso.test", IdentityKind.EXTRA, "web conferencing"),
)


def pem_chain_der(name: str) -> list[bytes]:
    """The certificates of a corpus PEM file, as DER, in file order."""
    certs = load_pem_certificates((CERTS / name).read_bytes())
    return [c.public_bytes(Encoding.DER) for c in certs]


@pytest.fixture(scope="session")
def test_trust() -> TrustStore:
    return load_ca_file(CERTS / "ca-bundle.pem")


@pytest.fixture(scope="session")
def lab() -> Iterator[LabInfo]:
    """The default lab world on 127.77.9.0/24, shared by the whole session (read-only use)."""
    with lab_in_thread(net="127.77.9") as info:
        yield info
