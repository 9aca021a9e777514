"""End-to-end: real scans of the embedded lab, in process and through the CLI as a subprocess.

Each lab domain is one real-world situation; the scan must report exactly its findings and the
exit code an administrator's cron job relies on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from scanner.cli import run
from scanner.findings import Status
from scanner.lab.run import LabInfo
from scanner.lab.zones import OWN_EDGE_ARGS
from tests.conftest import all_codes, lab_net

AT = ["--at", "2030-01-01T00:00:00Z"]  # the corpus' reference time: nothing expires soon
OWN_EDGE = list(OWN_EDGE_ARGS)


def scan_json(
    capsys: pytest.CaptureFixture[str], lab: LabInfo, *args: str, domains: list[str] | None = None
) -> tuple[int, dict[str, Any]]:
    code = run(["scan", *lab.scan_args(domains), *AT, "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)



@pytest.fixture(scope="module")
def partner_view(lab: LabInfo) -> dict[str, Any]:
    """One scan of every lab domain, as a partner sees them (no namespaces declared)."""
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "scan", *lab.scan_args(), *AT, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stderr == ""
    doc: dict[str, Any] = json.loads(proc.stdout)
    doc["_exit"] = proc.returncode
    return doc


def test_every_lab_domain_reports_exactly_its_findings(partner_view: dict[str, Any], lab: LabInfo) -> None:
    by_domain = {d["domain"]: d for d in partner_view["domains"]}
    for expected in lab.domains:
        got = by_domain[expected.domain]
        assert all_codes(got) == sorted(expected.codes), expected.domain
        assert got["status"] == expected.status.name, expected.domain


def test_partner_view_exit_code_is_the_worst_status(partner_view: dict[str, Any]) -> None:
    assert partner_view["_exit"] == 2
    assert partner_view["status"] == "CRITICAL"
    assert partner_view["schema_version"] == 1


def test_every_address_of_a_target_is_its_own_endpoint(partner_view: dict[str, Any]) -> None:
    contoso = next(d for d in partner_view["domains"] if d["domain"] == "contoso.test")
    addresses = Counter(
        (e["service"], e["address"].split(".")[-1] if "." in e["address"] else e["address"])
        for e in contoso["endpoints"]
    )
    assert sorted(addresses) == [
        ("sip-federation", "10"),
        ("sip-federation", "::1"),
        ("xmpp-server", "10"),
        ("xmpp-server", "::1"),
        ("xmpps-server", "10"),
        ("xmpps-server", "::1"),
    ]
    sip = next(e for e in contoso["endpoints"] if e["service"] == "sip-federation")
    assert sip["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert sip["tls"]["client_certificate_requested"] is True  # like a real Edge
    assert [c["match"] for c in sip["coverage"]] == ["dns-id"]
    assert sip["coverage"][0]["name"] == "sip.contoso.test"
    xmpps = next(e for e in contoso["endpoints"] if e["service"] == "xmpps-server")
    assert xmpps["tls"]["alpn"] == "xmpp-server"


def test_pool_mismatch_names_both_nodes(partner_view: dict[str, Any]) -> None:
    adatum = next(d for d in partner_view["domains"] if d["domain"] == "adatum.test")
    mismatch = next(f for f in adatum["findings"] if f["code"] == "pool-certificate-mismatch")
    assert mismatch["severity"] == "warning"
    assert mismatch["details"]["target"] == "sip.adatum.test"
    assert sorted(mismatch["details"]["certificates"]) == [f"{lab_net(9)}.14", f"{lab_net(9)}.15"]
    stale = next(e for e in adatum["endpoints"] if e["address"] == f"{lab_net(9)}.15")
    assert [f["code"] for f in stale["findings"]] == ["expired"]


def test_xmpp_endpoint_is_judged_on_the_xmpp_domain_not_the_target(partner_view: dict[str, Any]) -> None:
    northwind = next(d for d in partner_view["domains"] if d["domain"] == "northwind.test")
    xmpp = next(e for e in northwind["endpoints"] if e["service"] == "xmpp-server")
    assert [(f["code"], f["details"]["name"], f["details"]["kind"]) for f in xmpp["findings"]] == [
        ("san-missing", "northwind.test", "xmpp-domain")
    ]
    assert "{urn:ietf:params:xml:ns:xmpp-tls}starttls" in xmpp["xmpp_features"]


def test_own_consolidated_edge_covers_every_namespace(
    capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    code, doc = scan_json(capsys, lab, *OWN_EDGE, domains=["contoso.test", "fabrikam.test"])
    assert code == 0, doc
    assert doc["endpoint_counts"] == {"OK": 8, "WARNING": 0, "CRITICAL": 0, "UNKNOWN": 0}
    first = doc["domains"][0]["endpoints"][0]
    assert sorted(c["name"] for c in first["coverage"]) == [
        "contoso.test",
        "fabrikam.test",
        "sip.contoso.test",
        "sip.fabrikam.test",
        "webcon.contoso.test",
    ]


def test_declared_namespaces_are_required_on_every_endpoint(
    capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    # northwind's Edge certificate only has sip.northwind.test: as *our* Edge serving
    # northwind.test for SIP and XMPP, every endpoint lacks the XMPP namespace.
    code, doc = scan_json(
        capsys,
        lab,
        "--sip-domain",
        "northwind.test",
        "--xmpp-domain",
        "northwind.test",
        domains=["northwind.test"],
    )
    assert code == 2
    for endpoint in doc["domains"][0]["endpoints"]:
        missing = [f["details"]["name"] for f in endpoint["findings"] if f["code"] == "san-missing"]
        assert missing == ["northwind.test"]


def test_client_certificate_is_presented_when_given(capsys: pytest.CaptureFixture[str], lab: LabInfo) -> None:
    code, doc = scan_json(
        capsys,
        lab,
        "--client-cert",
        str(lab.client_cert),
        "--client-key",
        str(lab.client_key),
        "--service",
        "sip-federation",
        domains=["contoso.test"],
    )
    assert code == 0
    assert {e["tls"]["client_certificate_sent"] for e in doc["domains"][0]["endpoints"]} == {True}


def test_jsonl_streams_one_line_per_endpoint_then_domains_and_summary(lab: LabInfo) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            *lab.scan_args(["contoso.test", "litware.test"]),
            *AT,
            "--format",
            "jsonl",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    types = Counter(line["type"] for line in lines)
    assert types == {"endpoint": 8, "domain": 2, "summary": 1}
    assert lines[-1]["type"] == "summary" and lines[-1]["status"] == "CRITICAL"
    assert proc.returncode == 2


def test_table_output_shows_rows_and_findings(capsys: pytest.CaptureFixture[str], lab: LabInfo) -> None:
    code = run(["scan", *lab.scan_args(["litware.test"]), *AT])
    out = capsys.readouterr().out
    assert code == 2
    assert "litware.test" in out and "sip.litware.test" in out
    assert "CRITICAL expired" in " ".join(out.split())
    assert "Overall: CRITICAL" in out


def test_an_optional_service_nobody_publishes_is_info_and_others_go_on(
    capsys: pytest.CaptureFixture[str], lab: LabInfo
) -> None:
    # a nameserver that answers but a service list including sip-access, which no lab domain
    # publishes: optional, so info; and contoso still scans fine alongside
    code, doc = scan_json(
        capsys, lab, "--service", "sip-access", "--service", "sip-federation", domains=["contoso.test"]
    )
    assert code == 0
    codes = all_codes(doc["domains"][0])
    assert codes == ["srv-missing"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan"], "no domains to scan: give DOMAIN arguments, --domains-file FILE or --endpoint"),
        (["scan", "contoso.test", "--service", "smtp"], "unknown --service 'smtp'"),
        (["scan", "contoso.test", "--client-cert", "x.pem"], "x.pem: no such file"),
        (["scan", "bad..domain"], None),
        (["scan", "contoso.test", "--nameserver", "not-an-ip:99999"], None),
        (["scan", "contoso.test", "--shard", "3/2"], "--shard 3/2"),
        (["scan", "--domains-file", "/nonexistent/list.txt"], "/nonexistent/list.txt"),
    ],
)
def test_scan_usage_errors_are_one_line_exit_3(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str | None
) -> None:
    assert run(args) == 3
    err = capsys.readouterr().err
    assert err.startswith("fedscan: error: ") and err.count("\n") == 1
    if message:
        assert message in err


def test_dns_server_that_does_not_answer_is_unknown_not_critical(capsys: pytest.CaptureFixture[str]) -> None:
    # lab_net(8).1: nothing listens there; UDP queries go unanswered until the DNS deadline
    code = run(
        [
            "scan",
            "contoso.test",
            "--nameserver",
            f"{lab_net(8)}.1:53",
            "--timeout",
            "1",
            "--format",
            "json",
            "--service",
            "sip-federation",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 3
    assert all_codes(doc["domains"][0]) == ["dns-error"]
    assert doc["status"] == Status.UNKNOWN.name


def test_shards_partition_the_input_exactly() -> None:
    from scanner.shard import Shard

    domains = [f"d{i}.test" for i in range(2000)]
    parts = [Shard(k, 7).select(domains) for k in range(7)]
    assert sorted(d for p in parts for d in p) == sorted(domains)
    assert all(len(p) > 200 for p in parts)  # a real split, not everything in one shard
    assert Shard(3, 7).select(domains) == Shard.parse("3/7").select(list(reversed(domains)))[::-1]


def test_domains_file_and_stdin(tmp_path: Any, lab: LabInfo) -> None:
    listing = tmp_path / "domains.txt"
    listing.write_text("# partners\ncontoso.test\n\nlitware.test  # expired\n")
    env = {**os.environ}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            "--domains-file",
            "-",
            *lab.scan_args([]),
            *AT,
            "--format",
            "json",
            "--service",
            "sip-federation",
        ],
        input=listing.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    doc = json.loads(proc.stdout)
    assert [d["domain"] for d in doc["domains"]] == ["contoso.test", "litware.test"]
    assert proc.returncode == 2


def test_ctrl_c_stops_cleanly_and_still_reports(lab: LabInfo) -> None:
    """SIGINT mid-scan: no traceback, finished endpoints reported, marked interrupted, exit 3."""
    import signal

    # contoso answers at once; the second nameserver entry is a black hole, so the scan of
    # blackhole.test waits on DNS until the interrupt. The interrupt is sent when contoso's
    # domain line has been written (jsonl streams), never after a guessed sleep that could land
    # during interpreter start-up on a loaded machine.
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", "contoso.test", "blackhole.test",
         "--nameserver", lab.nameserver, "--ca-file", str(lab.ca_file), "--timeout", "60",
         "--service", "sip-federation", *AT, "--format", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    before: list[dict[str, Any]] = []
    while not before or before[-1].get("type") != "domain":
        line = proc.stdout.readline()
        assert line, "the scan ended before contoso.test was done"
        before.append(json.loads(line))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert err == ""
    assert proc.returncode == 3
    assert [(d["type"], d["domain"], d["status"]) for d in before] == [
        ("endpoint", "contoso.test", "OK"), ("endpoint", "contoso.test", "OK"),
        ("domain", "contoso.test", "OK")]
    summary = json.loads(out.splitlines()[-1])
    assert (summary["type"], summary["interrupted"], summary["status"], summary["exit_code"]) == (
        "summary", True, "UNKNOWN", 3)


def test_streamed_json_is_exactly_the_json_document(lab: LabInfo) -> None:
    """`--format json` is written a domain at a time; it must equal json.dumps of the report."""
    import io

    from scanner.discovery import parse_nameserver
    from scanner.live import run_scan
    from scanner.scan import ScanOptions
    from scanner.srv import DEFAULT_SERVICES
    from scanner.trust import load_ca_file
    from tests.conftest import NOW

    report = run_scan(
        ["contoso.test", "litware.test", "m365.test"], ScanOptions(services=DEFAULT_SERVICES),
        [parse_nameserver(lab.nameserver)], load_ca_file(lab.ca_file), NOW,
    )
    out = io.StringIO()
    report.write_json(out)
    assert out.getvalue() == json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    assert len(report.endpoints) == 8
