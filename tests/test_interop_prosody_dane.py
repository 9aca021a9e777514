"""Interop: DANE against a real XMPP server (Debian's prosody) behind a real validator (unbound).

prosody (started by :mod:`tests.test_interop_prosody`'s fixture, never the system service)
serves ``test-certs/edge.pem`` for ``contoso.test``. The lab's DNS signs ``contoso.test`` and
publishes two SRV targets for that one server, as a two-node deployment does: the TLSA of
``a.contoso.test`` names the key prosody serves, the TLSA of ``b.contoso.test`` names another
key (a node whose record was not updated when its certificate was renewed). fedscan asks
unbound, which validates with the lab's DNSKEY as trust anchor.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from scanner.cli import run
from scanner.findings import Status
from scanner.lab.run import LabInfo
from scanner.lab.thread import lab_in_thread
from scanner.lab.zones import XMPP, LabDomain, LabWorld, Srv
from tests.dane_env import unbound_for
from tests.test_interop_prosody import CERTS, FROM_DOMAIN, Prosody, prosody  # noqa: F401

DOMAIN = "contoso.test"


def _world(port: int) -> LabWorld:
    good, stale = f"_{port}._tcp.a.{DOMAIN}", f"_{port}._tcp.b.{DOMAIN}"
    return LabWorld(
        listeners=(),
        srv=(Srv(XMPP + DOMAIN, f"a.{DOMAIN}", None, port), Srv(XMPP + DOMAIN, f"b.{DOMAIN}", None, port)),
        hosts={f"a.{DOMAIN}": (1,), f"b.{DOMAIN}": (1,)},  # 127.0.0.1, where prosody listens
        domains=(LabDomain(DOMAIN, "prosody behind two DANE-signed SRV targets", Status.CRITICAL, ()),),
        records={
            (good, "TLSA"): (f"3 1 1 tlsa-of:{CERTS / 'edge'}:0",),
            (stale, "TLSA"): (f"3 1 1 tlsa-of:{CERTS / 'ecdsa-p256'}:0",),
        },
        signed=(DOMAIN,),
    )


@pytest.fixture(scope="module")
def prosody_dane(prosody: Prosody, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabInfo, str]]:  # noqa: F811
    with lab_in_thread(net="127.0.0", world=_world(prosody.port)) as lab, \
            unbound_for(lab, tmp_path_factory.mktemp("unbound")) as resolver:
        yield lab, resolver


def _scan(lab: LabInfo, resolver: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(["scan", DOMAIN, "--service", "xmpp-server", "--nameserver", lab.nameserver,
             "--ca-file", str(CERTS / "ca-bundle.pem"), "--from-domain", FROM_DOMAIN,
             "--dnssec-resolver", resolver, "--format", "json"])
    doc: dict[str, Any] = json.loads(out.getvalue())
    return doc


def test_prosody_endpoint_whose_tlsa_matches_and_one_whose_tlsa_names_a_stale_key(
    prosody_dane: tuple[LabInfo, str], prosody: Prosody,  # noqa: F811
) -> None:
    lab, resolver = prosody_dane
    doc = _scan(lab, resolver)
    [domain] = doc["domains"]
    by_target = {e["target"]: e for e in domain["endpoints"]}
    assert set(by_target) == {f"a.{DOMAIN}", f"b.{DOMAIN}"}, prosody.log_tail()
    for e in by_target.values():
        assert e["tls"] is not None, prosody.log_tail()  # a real STARTTLS handshake with prosody
    good = [f for f in by_target[f"a.{DOMAIN}"]["findings"] if f["code"].startswith("dane-")]
    stale = [f for f in by_target[f"b.{DOMAIN}"]["findings"] if f["code"].startswith("dane-")]
    assert [f["code"] for f in good] == ["dane-ok"]
    assert "DANE-EE(3) SPKI(1) SHA2-256(1) matches the leaf certificate" in good[0]["message"]
    assert [(f["code"], f["severity"]) for f in stale] == [("dane-mismatch", "critical")]
    assert by_target[f"b.{DOMAIN}"]["dane"]["dnssec"] == "secure"
    assert by_target[f"b.{DOMAIN}"]["status"] == "CRITICAL"
    assert doc["exit_code"] == 2
