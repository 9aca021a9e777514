"""Issue 14, "errors in our words": each error is one line that names the option or file, says
what is wrong and what to do, and exits 3 — never a library's own text.

(The hostile-peer wordings — a garbage peer, a bad-DER peer, plaintext on a TLS port — are
asserted with the hostile lab in tests/test_hostile_tls.py.)
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from scanner.cli import run
from scanner.cli_common import nameservers
from scanner.cli_scan import scan
from tests.conftest import CERTS
from tests.test_bad_input import one_line_error, write

AT = ["--at", "2030-01-01T00:00:00Z"]
# the hint names --endpoint only once `scan --endpoint HOST:PORT` exists
ENDPOINT_HINT = (" (--endpoint HOST:PORT scans one address)"
                 if "endpoint" in inspect.signature(scan).parameters else "")


def test_a_pfx_given_as_client_cert_says_what_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    # --client-cert takes a PFX since issue 12 (with its own key): a separate key is the mistake
    pfx = CERTS / "edge.pfx"
    assert one_line_error(capsys, ["scan", "contoso.test", "--client-cert", str(pfx),
                                   "--client-key", str(CERTS / "edge.key")]) == (
        f"{pfx}: this is a PKCS#12 (PFX) file, which carries its own key: give it alone "
        "(--client-cert FILE or --as-edge FILE), without --client-key")


def test_junk_client_cert_has_no_openssl_source_location(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    junk = write(tmp_path, "client.pem", b"not a certificate")
    message = one_line_error(capsys, ["scan", "contoso.test", "--client-cert", str(junk),
                                      "--client-key", str(CERTS / "client.key")])
    assert message == f"{junk}: not a certificate file (a PFX, or PEM with the key and chain)"


def test_a_client_key_of_another_certificate(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--client-cert", str(CERTS / "client.pem"),
                                   "--client-key", str(CERTS / "edge.key")]) == (
        f"{CERTS / 'client.pem'}: cannot load the client certificate/key: {CERTS / 'edge.key'} is not the "
        "private key of this certificate")


def test_junk_ca_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = write(tmp_path, "junk.txt", b"just some text\n")
    assert one_line_error(capsys, ["cert", str(CERTS / "edge.pem"), "--ca-file", str(junk)]) == (
        f"CA file {junk} holds no usable certificate: neither PEM certificates nor one DER certificate")


@pytest.mark.parametrize(("args", "message"), [
    (["--timeout", "abc"], "--timeout: 'abc' is not a number of seconds, e.g. 10"),
    (["--timeout", "0"], "--timeout: 0.0 is out of range (at least 0.1)"),
    (["--concurrency", "many"], "--concurrency: 'many' is not a whole number, e.g. 64"),
    (["--bogus"], "fedscan scan: no such option --bogus (see fedscan scan --help)"),
    (["--timout", "3"], "fedscan scan: no such option --timout; did you mean --timeout? "
                        "(see fedscan scan --help)"),
    (["--format", "xml"], "--format: 'xml' is not one of table, json, jsonl"),
])
def test_usage_errors_in_our_words(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", *args]) == message


def test_a_command_group_called_bare(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["report"]) == (
        "fedscan report: give a command: merge, html (see fedscan report --help)")
    assert one_line_error(capsys, ["monitor"]) == (
        "fedscan monitor: --config is required (see fedscan monitor --help)")
    assert one_line_error(capsys, ["cert"]) == "fedscan cert: give FILE... (see fedscan cert --help)"


@pytest.mark.parametrize(("args", "message"), [
    (["http://contoso.test/"], "'http://contoso.test/': give a domain, not a URL (e.g. contoso.test)"),
    (["x.test", "--sip-domain", "https://contoso.test"],
     "--sip-domain 'https://contoso.test': give a domain, not a URL (e.g. contoso.test)"),
    (["contoso.test:5061"], "'contoso.test:5061': give the domain alone (contoso.test); ports come from "
                            "its SRV records" + ENDPOINT_HINT),
    (["x.test", "--from-domain", "bad..example"],
     "--from-domain: invalid domain 'bad..example': empty label"),
])
def test_domains_that_are_something_else(capsys: pytest.CaptureFixture[str], args: list[str],
                                         message: str) -> None:
    assert one_line_error(capsys, ["scan", *args]) == message


def test_domains_file_empty_or_with_a_bad_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.txt", b"# nothing yet\n\n")
    assert one_line_error(capsys, ["scan", "--domains-file", str(empty)]) == (
        f"{empty}: no domains in it (empty, or only blank lines and # comments)")
    bad = write(tmp_path, "domains.txt", b"contoso.test\n# a comment\nbad..name\n")
    assert one_line_error(capsys, ["scan", "--domains-file", str(bad)]) == (
        f"{bad}:3: invalid domain 'bad..name': empty label")
    url = write(tmp_path, "urls.txt", b"https://fabrikam.test\n")
    assert one_line_error(capsys, ["scan", "--domains-file", str(url)]) == (
        f"{url}:1: 'https://fabrikam.test': give a domain, not a URL (e.g. fabrikam.test)")


def test_offline_der_file_does_not_speak_of_serving(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["cert", str(CERTS / "edge.der"), "--ca-file", str(CERTS / "ca-bundle.pem"), *AT,
                "--format", "json"]) == 2
    [f] = json.loads(capsys.readouterr().out)["files"][0]["findings"]
    assert f["code"] == "chain-incomplete"
    assert "is not in the file and is not a trusted root" in f["message"]
    assert "served" not in f["message"]


def test_help_names_what_each_option_takes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["scan", "-h"]) == 0
    text = capsys.readouterr().out
    assert "<str>" not in text and "<path>" not in text
    for shown in ("--domains-file FILE", "--shard K/N", "--nameserver HOST[:PORT]", "--ca-file FILE",
                  "--timeout SECONDS", "--client-cert FILE", "--sip-domain DOMAIN", "--at TIME"):
        assert shown in " ".join(text.split()), shown
    assert run(["monitor", "--help"]) == 0
    assert "-c, --config FILE" in capsys.readouterr().out
    for command in (["cert"], ["plan"], ["monitor"], ["readiness"], ["lab"], ["codes"], ["check-config"],
                    ["report", "merge"], ["report", "html"], ["demo"]):
        assert run([*command, "--help"]) == 0
        shown = capsys.readouterr().out
        assert "<str>" not in shown and "<path>" not in shown and "range>" not in shown, command


def test_nameserver_takes_a_host_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert nameservers(["localhost:5353", "192.0.2.1", "[::1]:53"]) == [
        ("127.0.0.1", 5353), ("192.0.2.1", 53), ("::1", 53)]
    message = one_line_error(capsys, ["scan", "contoso.test", "--nameserver", "no-such-host.invalid"])
    assert message == "--nameserver 'no-such-host.invalid': cannot resolve the host name no-such-host.invalid"


def test_check_config_prints_the_full_path(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f.toml").write_text('[deployment]\nsip_domains = ["contoso.test"]\n')
    monkeypatch.chdir(tmp_path)
    assert run(["check-config", "f.toml"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'f.toml'}: OK (Edge sip.contoso.test): ")


def test_pfx_without_a_terminal_names_the_environment_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDSCAN_PFX_PASSWORD", raising=False)
    assert one_line_error(capsys, ["cert", str(CERTS / "edge.pfx")]) == (
        f"{CERTS / 'edge.pfx'}: PFX is password-protected: give --password or set FEDSCAN_PFX_PASSWORD "
        "(no terminal to ask on)")
