"""Bad input from the user: one line on stderr naming what is wrong, exit 3, never a traceback.

Complements tests/test_cli_offline.py and tests/test_scan_lab.py (missing files, bad --at,
bad domains already there). Tests run as root in CI, so "unreadable" is a directory, a FIFO
(which a naive read would block on forever) or a socket, never chmod 000.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.cli import run
from tests.conftest import CERTS


def one_line_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert run(args) == 3
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("fedscan: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err and captured.out == ""
    return err.removeprefix("fedscan: error: ").rstrip("\n")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "cert.pem"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "cert.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- certificate files -------------------------------------------------------------------------------


def test_directory_as_certificate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert one_line_error(capsys, ["cert", str(tmp_path)]) == (
        f"{tmp_path}: is a directory, not a certificate file")


def test_fifo_as_certificate_does_not_block(capsys: pytest.CaptureFixture[str], fifo: Path) -> None:
    assert one_line_error(capsys, ["cert", str(fifo)]) == (
        f"{fifo}: not a regular file (a pipe, socket or device)")


def test_socket_as_certificate(capsys: pytest.CaptureFixture[str], unix_socket: Path) -> None:
    assert "not a regular file" in one_line_error(capsys, ["cert", str(unix_socket)])


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_empty_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "empty.pem", data)
    assert one_line_error(capsys, ["cert", str(path)]) == f"{path}: empty file"


def test_binary_junk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "junk.cer", bytes(range(256)) * 8)
    assert one_line_error(capsys, ["cert", str(path), "--password", "x"]) == (
        f"{path}: not a certificate, PFX or CSR (PEM, DER or PKCS#12)")


def test_pem_with_broken_base64(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = (CERTS / "edge.pem").read_bytes().splitlines(keepends=True)
    lines[3] = b"!!!! this is not base64 !!!!\n"
    path = write(tmp_path, "broken.pem", b"".join(lines))
    assert one_line_error(capsys, ["cert", str(path)]) == (
        f"{path}: malformed PEM certificate (bad base64 or DER inside the BEGIN/END lines)")


def test_pem_csr_with_broken_body(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # was a traceback: the CSR was only parsed after loading, outside the LoadError boundary
    path = write(tmp_path, "broken.csr",
                 b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64!!\n-----END CERTIFICATE REQUEST-----\n")
    assert "malformed PEM certificate request" in one_line_error(capsys, ["cert", str(path)])


def test_truncated_der(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "cut.der", (CERTS / "edge.der").read_bytes()[:200])
    assert "not a certificate, PFX or CSR" in one_line_error(capsys, ["cert", str(path), "--password", "x"])


def test_pfx_with_the_wrong_password(capsys: pytest.CaptureFixture[str]) -> None:
    pfx = CERTS / "edge.pfx"
    assert one_line_error(capsys, ["cert", str(pfx), "--password", "wrong"]) == (
        f"{pfx}: wrong PFX password (or a corrupt PFX)")


def test_corrupt_pfx(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = bytearray((CERTS / "edge.pfx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    path = write(tmp_path, "corrupt.pfx", bytes(data))
    assert "wrong PFX password (or a corrupt PFX)" in one_line_error(
        capsys, ["cert", str(path), "--password", "fedscan"])


def test_private_key_instead_of_certificate(capsys: pytest.CaptureFixture[str]) -> None:
    key = CERTS / "edge.key"
    assert one_line_error(capsys, ["cert", str(key)]) == (
        f"{key}: PEM file without a certificate or certificate request")


# --- the CA file --------------------------------------------------------------------------------------


def test_ca_file_that_is_junk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "ca.pem", b"\x00\x01junk")
    assert f"CA file {path} holds no usable certificate" in one_line_error(
        capsys, ["cert", str(CERTS / "edge.pem"), "--ca-file", str(path)])


def test_ca_file_that_is_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert f"cannot read CA file {tmp_path}" in one_line_error(
        capsys, ["cert", str(CERTS / "edge.pem"), "--ca-file", str(tmp_path)])


# --- scan options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [
    ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "soon"),
    ("--concurrency", "0"), ("--concurrency", "-5"), ("--concurrency", "many"),
])
def test_scan_numeric_options_out_of_range(capsys: pytest.CaptureFixture[str], option: str,
                                           value: str) -> None:
    message = one_line_error(capsys, ["scan", "contoso.test", option, value])
    assert option in message


@pytest.mark.parametrize("domain", [
    "under_score.test", "192.0.2.1", "a" * 64 + ".test", ".", "", "-lead.test", "x..y", "a b.test",
])
def test_invalid_domain(capsys: pytest.CaptureFixture[str], domain: str) -> None:
    assert one_line_error(capsys, ["scan", "--", domain]).startswith("invalid domain")


def test_invalid_from_domain(capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid domain" in one_line_error(
        capsys, ["scan", "contoso.test", "--from-domain", "bad..example"])


def test_client_key_without_cert(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--client-key", "k.pem"]) == (
        "--client-key goes with --client-cert")


def test_client_cert_that_is_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--client-cert", str(tmp_path),
                                   "--client-key", str(CERTS / "client.key")]) == (
        f"{tmp_path}: is a directory, not a certificate file")


def test_client_cert_that_is_junk(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = write(tmp_path, "client.pem", b"not a certificate")
    assert one_line_error(capsys, ["scan", "contoso.test", "--client-cert", str(junk),
                                   "--client-key", str(CERTS / "client.key")]) == (
        f"{junk}: not a certificate file (a PFX, or PEM with the key and chain)")


def test_client_key_that_does_not_match(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--client-cert", str(CERTS / "client.pem"),
                                   "--client-key", str(CERTS / "edge.key")]) == (
        f"{CERTS / 'client.pem'}: cannot load the client certificate/key: {CERTS / 'edge.key'} is not the "
        "private key of this certificate")


# --- --as-edge: our Edge's certificate, as a PFX or a PEM with key and chain (issue 12) ----------


def test_as_edge_wrong_pfx_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--as-edge", str(CERTS / "edge.pfx"),
                                   "--password", "wrong"]) == (
        f"{CERTS / 'edge.pfx'}: wrong PFX password (or not a PFX/PEM file)")


def test_as_edge_pfx_without_password(capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDSCAN_PFX_PASSWORD", raising=False)
    assert one_line_error(capsys, ["scan", "contoso.test", "--as-edge", str(CERTS / "edge.pfx")]) == (
        f"{CERTS / 'edge.pfx'}: PFX is password-protected: give --password or set FEDSCAN_PFX_PASSWORD "
        "(no terminal to ask on)")


def test_as_edge_pfx_without_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--as-edge", str(CERTS / "edge-nokey.pfx"),
                                   "--password", "fedscan"]) == (
        f"{CERTS / 'edge-nokey.pfx'}: the PFX holds no private key: export it again with the key")


def test_as_edge_pem_without_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--as-edge", str(CERTS / "edge.pem")]) == (
        f"{CERTS / 'edge.pem'}: no private key in the file: give a PFX, a PEM holding the key and "
        "the chain, or --client-key")


def test_as_edge_pem_with_a_key_that_does_not_match(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    mixed = write(tmp_path, "mixed.pem", (CERTS / "edge.key").read_bytes()
                  + (CERTS / "client.pem").read_bytes())
    assert one_line_error(capsys, ["scan", "contoso.test", "--as-edge", str(mixed)]) == (
        f"{mixed}: the private key does not match the certificate")


def test_as_edge_and_client_cert_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["scan", "contoso.test", "--as-edge", "a.pfx",
                                   "--client-cert", "b.pem"]) == (
        "--as-edge and --client-cert both name the certificate to present: give one")


@pytest.mark.parametrize(("args", "message"), [
    (["--endpoint", "sip-federation"], "expected SERVICE=HOST:PORT"),
    (["--endpoint", "smtp=mail.test:25"], "unknown service 'smtp'"),
    (["--endpoint", "sip-federation=sip.contoso.test"], "expected HOST:PORT"),
    (["--endpoint", "sip-federation=sip.contoso.test:70000"], "expected HOST:PORT"),
    (["--endpoint", "sip-federation=192.0.2.1:5061"], "HOST is an address; give --sni NAME"),
    (["--sni", "sip.contoso.test"], "--sni goes with --endpoint"),
])
def test_endpoint_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert message in one_line_error(capsys, ["scan", *args])


def test_unknown_output_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--format" in one_line_error(capsys, ["scan", "contoso.test", "--format", "xml"])


def test_domains_file_that_is_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert str(tmp_path) in one_line_error(capsys, ["scan", "--domains-file", str(tmp_path)])


def test_domains_file_that_is_binary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "domains.txt", b"\xff\xfe\x00junk")
    assert one_line_error(capsys, ["scan", "--domains-file", str(path)]) == (
        f"{path}: not a UTF-8 text file")


def test_domains_file_with_an_invalid_domain(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "domains.txt", b"contoso.test\nbad..name\n")
    message = one_line_error(capsys, ["scan", "--domains-file", str(path)])
    assert message.startswith(f"{path}:2: invalid domain")


# --- the config file (another engineer's command, tested only through the CLI) ------------------------


def test_check_config_on_a_missing_and_a_junk_file(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert str(missing) in one_line_error(capsys, ["check-config", str(missing)])
    junk = write(tmp_path, "junk.toml", b"\x00\xff[[[")
    one_line_error(capsys, ["check-config", str(junk)])
