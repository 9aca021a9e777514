"""What the hostile-lab tests share: the scan's result type and the assertions every
misbehaving endpoint gets. The session fixtures (one hostile lab, one scan) are in conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.lab.hostile import HEALTHY_DOMAIN, Case, hostile_cases
from scanner.lab.run import LabInfo
from tests.conftest import all_codes

AT = ["--at", "2030-01-01T00:00:00Z"]
TIMEOUT = 2.0
SLACK = 0.5  # per endpoint: scheduling, the post-handshake probe, closing


@dataclass(frozen=True)
class HostileScan:
    doc: dict[str, Any]
    exit_code: int
    stderr: str
    wall: float

    def domain(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(d for d in self.doc["domains"] if d["domain"] == name)
        return found

    def endpoint(self, name: str, service: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            e for e in self.domain(name)["endpoints"] if e["service"] == service
        ]
        assert len(found) == 1, (name, service, found)
        return found[0]


def codes(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(f["code"] for f in findings)



def hostile_service(case: Case) -> str:
    return {"sip": "sip-federation", "xmpp": "xmpp-server", "xmpps": "xmpps-server"}[case.kind]


def check_case(scan: HostileScan, lab: LabInfo, case: Case) -> dict[str, Any]:
    """The common assertions of every misbehaving endpoint; returns its JSON result."""
    endpoint = scan.endpoint(case.domain, hostile_service(case))
    assert codes(endpoint["findings"]) == sorted(case.codes)
    assert endpoint["timings"]["total"] <= TIMEOUT + SLACK
    expected = next(d for d in lab.domains if d.domain == case.domain)
    domain = scan.domain(case.domain)
    assert all_codes(domain) == list(expected.codes)
    assert domain["status"] == expected.status.name
    assert scan.domain(HEALTHY_DOMAIN)["status"] == "OK"
    assert all(e["findings"] == [] for e in scan.domain(HEALTHY_DOMAIN)["endpoints"])
    return endpoint


CASES = {c.label: c for c in hostile_cases()}


def finding_of(endpoint: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in endpoint["findings"] if f["code"] == code)
