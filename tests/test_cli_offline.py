"""`fedscan cert`, `plan` and `codes`: exact output facts and exit codes users rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from scanner.cli import run
from scanner.lab.zones import OWN_EDGE_ARGS
from tests.conftest import CERTS

CONTOSO = list(OWN_EDGE_ARGS)
LAB = ["--ca-file", str(CERTS / "ca-bundle.pem"), "--at", "2030-01-01T00:00:00Z"]


def cert_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = run(["cert", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def codes_of(doc: dict[str, object], index: int = 0) -> list[str]:
    files = doc["files"]
    assert isinstance(files, list)
    return sorted(f["code"] for f in files[index]["findings"])


def test_healthy_edge_is_ok_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = cert_json(capsys, str(CERTS / "edge.pem"), *CONTOSO, *LAB)
    assert code == 0
    assert doc["status"] == "OK"
    assert codes_of(doc) == []


def test_missing_xmpp_namespace_is_critical_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = cert_json(capsys, str(CERTS / "missing-xmpp-fabrikam.pem"), *CONTOSO, *LAB)
    assert code == 2
    assert codes_of(doc) == ["san-missing"]
    files = doc["files"]
    assert isinstance(files, list)
    missing = [c for c in files[0]["coverage"] if c["covered_by"] is None]
    assert [(c["name"], c["kind"]) for c in missing] == [("fabrikam.test", "xmpp-domain")]


def test_warning_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = cert_json(capsys, str(CERTS / "no-crl.pem"), *CONTOSO, *LAB)
    assert (code, codes_of(doc)) == (1, ["no-crl-distribution-point"])


def test_client_auth_optional_turns_critical_into_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cert_json(capsys, str(CERTS / "serverauth-only.pem"), *CONTOSO, *LAB)
    assert code == 2
    code, doc = cert_json(
        capsys, str(CERTS / "serverauth-only.pem"), *CONTOSO, *LAB, "--client-auth", "optional"
    )
    assert (code, codes_of(doc)) == (1, ["eku-client-auth-missing"])


def test_pfx_with_password_option_and_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, doc = cert_json(capsys, str(CERTS / "edge.pfx"), "--password", "fedscan", *CONTOSO, *LAB)
    assert (code, codes_of(doc)) == (0, [])
    files = doc["files"]
    assert isinstance(files, list) and files[0]["kind"] == "pkcs12"
    monkeypatch.setenv("FEDSCAN_PFX_PASSWORD", "fedscan")
    code, doc = cert_json(capsys, str(CERTS / "edge-nokey.pfx"), *CONTOSO, *LAB)
    assert (code, codes_of(doc)) == (2, ["pfx-key-missing"])


def test_wrong_pfx_password_is_one_line_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["cert", str(CERTS / "edge.pfx"), "--password", "nope", *LAB])
    err = capsys.readouterr().err
    assert code == 3
    assert err == f"fedscan: error: {CERTS / 'edge.pfx'}: wrong PFX password (or a corrupt PFX)\n"


def test_pfx_without_password_and_no_terminal_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDSCAN_PFX_PASSWORD", raising=False)
    code = run(["cert", str(CERTS / "edge.pfx"), *LAB])
    assert code == 3
    assert "password-protected: give --password" in capsys.readouterr().err


def test_csr_checks_requested_names_and_ekus(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = cert_json(capsys, str(CERTS / "csr-missing-xmpp.csr"), *CONTOSO, *LAB)
    assert code == 2
    assert codes_of(doc) == ["eku-client-auth-missing", "san-missing", "san-missing"]
    code, doc = cert_json(capsys, str(CERTS / "edge.csr"), *CONTOSO, *LAB)
    assert (code, codes_of(doc)) == (0, [])


def test_der_leaf_and_pem_in_any_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, doc = cert_json(capsys, str(CERTS / "edge.der"), *CONTOSO, *LAB)
    assert (code, codes_of(doc)) == (2, ["chain-incomplete"])
    # the misordered bundle is fine as a *file*: order only matters on the wire
    code, doc = cert_json(capsys, str(CERTS / "misordered.pem"), *CONTOSO, *LAB)
    assert (code, codes_of(doc)) == (0, [])


def test_without_namespaces_lists_covered_names(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["cert", str(CERTS / "edge.pem"), *LAB])
    out = capsys.readouterr().out
    assert code == 0
    assert "sip.contoso.test, webcon.contoso.test, contoso.test, sip.fabrikam.test, fabrikam.test" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cert", "missing.pem"], "fedscan: error: missing.pem: no such file\n"),
        (["cert", str(CERTS / "edge.pem"), "--sip-domain", "bad..name"], None),
        (
            ["cert", str(CERTS / "edge.pem"), "--at", "yesterday"],
            "fedscan: error: --at: not an ISO 8601 time: 'yesterday'\n",
        ),
        (["cert", str(CERTS / "edge.pem"), "--ca-file", "/nonexistent/ca.pem"], None),
        (["cert", str(CERTS / "edge.pem"), "--warn-days", "5", "--crit-days", "10"], None),
        (["cert", "--no-such-option"],
         "fedscan: error: fedscan cert: no such option --no-such-option (see fedscan cert --help)\n"),
        (["cert", str(CERTS / "README.md")], None),
        (["plan"], "fedscan: error: give at least one --sip-domain, or --edge-fqdn\n"),
        (
            ["plan", "--sip-domain", "contoso.test", "--csr", "x.csr"],
            "fedscan: error: --csr and --key go together\n",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_3(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str | None
) -> None:
    assert run(args) == 3
    err = capsys.readouterr().err
    assert err.startswith("fedscan: error: ") and err.count("\n") == 1
    if message is not None:
        assert err == message


def test_plan_lists_every_namespace_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["plan", *CONTOSO[:-2], "--webconf-fqdn", "webcon.contoso.test", "--format", "json"])
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert code == 0
    assert plan["subject"] == "sip.contoso.test"
    assert [s["name"] for s in plan["sans"]] == [
        "sip.contoso.test",
        "webcon.contoso.test",
        "sip.fabrikam.test",
        "contoso.test",
        "fabrikam.test",
    ]
    assert all(s["reason"] for s in plan["sans"])
    assert plan["eku"] == ["serverAuth", "clientAuth"]


def test_plan_writes_a_csr_that_passes_its_own_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csr, key = tmp_path / "edge.csr", tmp_path / "edge.key"
    assert run(["plan", *CONTOSO, "--csr", str(csr), "--key", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    request = x509.load_pem_x509_csr(csr.read_bytes())
    assert request.is_signature_valid
    capsys.readouterr()
    code, doc = cert_json(capsys, str(csr), *CONTOSO, *LAB)
    assert (code, codes_of(doc)) == (0, [])
    # never overwrite a private key
    assert run(["plan", *CONTOSO, "--csr", str(csr), "--key", str(key)]) == 3


def test_python_dash_m_and_console_script_agree() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scanner", "cert", str(CERTS / "expired.pem"), *LAB, *CONTOSO],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "expired" in proc.stdout
    assert proc.stderr == ""


def test_codes_lists_every_registered_code(capsys: pytest.CaptureFixture[str]) -> None:
    from scanner.findings import CODES

    assert run(["codes", "--format", "json"]) == 0
    listed = [c["code"] for c in json.loads(capsys.readouterr().out)]
    assert listed == list(CODES)


def test_a_file_with_two_leaves_checks_each(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Old and new certificate concatenated: judging the first one only would be a false OK."""
    bundle = tmp_path / "both.pem"
    for order in (["edge.pem", "untrusted.pem"], ["untrusted.pem", "edge.pem"]):
        bundle.write_bytes(b"".join((CERTS / n).read_bytes() for n in order))
        code, doc = cert_json(capsys, str(bundle), *CONTOSO, *LAB)
        files = doc["files"]
        assert isinstance(files, list)
        assert code == 2  # the untrusted one is critical, whatever the order
        assert sorted(f["part"] for f in files) == ["certificate 1 of 2", "certificate 2 of 2"]
        by_issuer = {f["certificate"]["issuer"].split(",")[0]: f for f in files}
        assert [x["code"] for x in by_issuer["CN=Fedscan Test Issuing CA 1"]["findings"]] == []
        assert [x["code"] for x in by_issuer["CN=Fedscan Untrusted Root CA"]["findings"]] == [
            "chain-untrusted"
        ]
        assert [len(f["chain"]) for f in files] in ([1, 1],)  # each leaf with its own issuer
