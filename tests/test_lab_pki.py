"""The lab's certificates come from the user's cache, never from the source tree.

Made on first use in ``$XDG_CACHE_HOME/fedscan``, made again when missing or about to expire,
atomically even when two processes start at once; and "cannot start the lab" names the cause.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from scanner.certload import load_pem_certificates
from scanner.cli import run
from scanner.lab.certfactory import utc
from scanner.lab.pki import LAB_CERTS, LabPki, cache_home, lab_pki, spec_digest
from scanner.lab.run import LabInfo
from tests.conftest import lab_net


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "fedscan"


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and cert.signature_hash_algorithm is not None
    key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    return cert.issuer == issuer.subject


def assert_complete(pki: LabPki) -> None:
    root = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    inter = x509.load_pem_x509_certificate(pki.chain("intermediate").read_bytes())
    assert issued_by(inter, root)
    for stem, spec in LAB_CERTS.items():
        # load_pem_certificates: the public-chain leaves (zero serial, fractional seconds)
        leaf, served, *extra = load_pem_certificates(pki.chain(stem).read_bytes())
        assert len(extra) == len(spec.extra), stem
        assert served == inter if spec.issuer == "intermediate" else issued_by(served, root), stem
        if spec.serial is None and spec.not_after_text is None:  # else re-signed over other bytes
            assert issued_by(leaf, served), stem
        key = load_pem_private_key(pki.key(stem).read_bytes(), None)
        assert key.public_key() == leaf.public_key(), stem


def test_made_in_the_xdg_cache_on_first_use(cache: Path) -> None:
    assert cache_home() == cache
    pki = lab_pki()
    assert pki.dir == cache / f"lab-{spec_digest()}"
    assert_complete(pki)
    assert oct(pki.dir.stat().st_mode & 0o777) == "0o700"
    assert oct(pki.key("intermediate").stat().st_mode & 0o777) == "0o600"
    assert lab_pki() == pki and pki.key("edge").read_bytes() == lab_pki().key("edge").read_bytes()
    leaf = x509.load_pem_x509_certificate(pki.chain("lab/litware").read_bytes())
    assert leaf.not_valid_after_utc == utc(2021)  # the expired lab domain stays expired
    leaf = x509.load_pem_x509_certificate(pki.chain("edge").read_bytes())
    assert leaf.not_valid_before_utc <= dt.datetime.now(dt.UTC) and leaf.not_valid_after_utc >= utc(2040)


def test_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert cache_home() == Path.home() / ".cache" / "fedscan"


def test_made_again_when_a_file_is_missing(cache: Path) -> None:
    pki = lab_pki()
    old_root = pki.ca_file.read_bytes()
    pki.key("lab/northwind").unlink()
    again = lab_pki()
    assert again.dir == pki.dir and again.ca_file.read_bytes() != old_root
    assert_complete(again)


def test_made_again_before_it_expires(cache: Path) -> None:
    pki = lab_pki()
    manifest = json.loads((pki.dir / "manifest.json").read_text())
    valid_until = dt.datetime.fromisoformat(manifest["valid_until"])
    assert valid_until >= utc(2040)
    old_root = pki.ca_file.read_bytes()
    # still usable 31 days before the end; made again (and valid for ten more years) at 29
    assert lab_pki(now=valid_until - dt.timedelta(days=31)).ca_file.read_bytes() == old_root
    later = valid_until - dt.timedelta(days=29)
    renewed = lab_pki(now=later)
    assert renewed.dir == pki.dir and renewed.ca_file.read_bytes() != old_root
    assert_complete(renewed)
    edge = x509.load_pem_x509_certificate(renewed.chain("edge").read_bytes())
    assert edge.not_valid_after_utc >= later + dt.timedelta(days=3650)
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_two_processes_starting_at_once_agree(cache: Path) -> None:
    code = "from scanner.lab.pki import lab_pki; print(lab_pki().dir)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len(set(outs)) == 1
    pki = LabPki(Path(outs[0]))
    assert_complete(pki)
    assert sorted(p.name for p in cache.iterdir()) == [pki.dir.name]  # losers cleaned up


def test_an_unwritable_cache_is_named_as_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert run(["lab", "--net", lab_net(44)]) == 3
    assert capsys.readouterr().err == (
        f"fedscan: error: cannot start the lab: cannot make the lab's certificates in {blocker}/fedscan: "
        "Not a directory (set XDG_CACHE_HOME to a writable directory)\n"
    )


def test_an_address_in_use_is_named_as_the_cause(lab: LabInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["lab", "--net", lab.net]) == 3
    assert capsys.readouterr().err == (
        f"fedscan: error: cannot start the lab: an address in {lab.net}.0/24 is already in use (another "
        "lab, or a server listening on all addresses, e.g. an XMPP server on 5269? try another --net or "
        "stop it)\n"
    )


def test_nothing_installed_finds_files_beside_its_source() -> None:
    # the lab once read ../../test-certs: what a wheel does not contain
    package = Path(__file__).resolve().parent.parent / "scanner"
    for module in package.rglob("*.py"):
        assert "__file__" not in module.read_text(), module


def test_demo_runs_from_any_directory(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    proc = subprocess.run([sys.executable, "-m", "scanner", "demo", "--net", lab_net(45)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "# every lab domain, as a federation partner sees it" in proc.stdout
    assert "# our consolidated Edge, against every namespace it serves" in proc.stdout
    assert proc.stdout.rstrip().endswith(
        "demo: partner scan exited 2 (2 = CRITICAL: the lab has broken domains), "
        "own-Edge scan exited 0 (0 = OK), acceptance scan exited 2 (2 = CRITICAL: "
        "wideworldimporters.test does not federate with contoso.test)")
    assert f"--ca-file {tmp_path}/xdg/fedscan/lab-" in proc.stdout
