"""Reading what an administrator hands us offline: PEM, DER, PKCS#12/PFX, PKCS#10.

Theory of this module
---------------------
The format is sniffed from the bytes, not the file name (people rename .cer files freely).
Everything that can go wrong with a file becomes a :class:`LoadError` with one line that names
the file and the problem; the CLI prints it and exits 3 ("could not check"). A PFX without its
key, or with a key that does not match, is not an error but a finding: the file was read, and
the administrator needs to know it will not install.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from scanner.bundle import order_chain
from scanner.certload import load_der_certificate, load_pem_with_der, quiet_serials
from scanner.findings import Finding, finding

MAX_INPUT_BYTES = 10 * 1024 * 1024


class LoadError(ValueError):
    """A file that cannot be checked; the message is the one line the user sees."""


class PasswordNeeded(LoadError):
    """A PFX whose password was not given (the CLI may prompt and retry)."""


@dataclass(frozen=True)
class Loaded:
    """What one file held: certificates (leaf first where known) or a CSR."""

    path: Path
    kind: str  # "pem", "der", "pkcs12", "csr"
    certs: tuple[x509.Certificate, ...] = ()
    csr_bytes: bytes | None = None
    findings: tuple[Finding, ...] = field(default=())
    # the DER each certificate was read from, in the same order: a certificate with
    # fractional-second times is loaded as a whole-seconds copy (scanner.certload), and only
    # its original says what it really says
    originals: tuple[bytes, ...] = field(default=(), repr=False)

    def der_of(self, cert: x509.Certificate) -> bytes:
        """The DER ``cert`` (one of :attr:`certs`) was read from."""
        for c, der in zip(self.certs, self.originals, strict=False):
            if c is cert:
                return der
        return cert.public_bytes(serialization.Encoding.DER)


def read_input(path: Path) -> bytes:
    """The file's bytes, or a one-line LoadError. Only regular files are read: a FIFO or a
    device would block or never end, and a directory is a user's slip."""
    try:
        if path.is_dir():
            raise LoadError(f"{path}: is a directory, not a certificate file")
        if path.exists() and not path.is_file():
            raise LoadError(f"{path}: not a regular file (a pipe, socket or device)")
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise LoadError(f"{path}: {size} bytes is too large for a certificate file")
        return path.read_bytes()
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except PermissionError:
        raise LoadError(f"{path}: permission denied") from None
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_file(path: Path, password: Callable[[], str | None]) -> Loaded:
    """Load one file; ``password`` is asked only if the file turns out to be a PFX."""
    data = read_input(path)
    if not data.strip():
        raise LoadError(f"{path}: empty file")
    if b"-----BEGIN CERTIFICATE REQUEST-----" in data or b"-----BEGIN NEW CERTIFICATE" in data:
        try:  # parsed here so that a broken CSR is a LoadError, not a crash further on
            x509.load_pem_x509_csr(data)
        except ValueError:
            raise LoadError(f"{path}: malformed PEM certificate request (bad base64 or DER "
                            "inside the BEGIN/END lines)") from None
        return Loaded(path, "csr", csr_bytes=data)
    if b"-----BEGIN CERTIFICATE-----" in data or b"-----BEGIN X509 CERTIFICATE" in data:
        try:
            certs = load_pem_with_der(data)
        except ValueError:
            raise LoadError(f"{path}: malformed PEM certificate (bad base64 or DER inside the "
                            "BEGIN/END lines)") from None
        return Loaded(path, "pem", tuple(c for c, _ in certs),
                      originals=tuple(der for _, der in certs))
    if b"-----BEGIN" in data:
        raise LoadError(f"{path}: PEM file without a certificate or certificate request")
    return _load_binary(path, data, password)


def _load_binary(path: Path, data: bytes, password: Callable[[], str | None]) -> Loaded:
    try:
        return Loaded(path, "der", (load_der_certificate(data),), originals=(data,))
    except ValueError:
        pass
    try:
        x509.load_der_x509_csr(data)
    except ValueError:
        pass
    else:
        return Loaded(path, "csr", csr_bytes=data)
    return _load_pkcs12(path, data, password)


def _parse_pkcs12(data: bytes, password: bytes | None) -> pkcs12.PKCS12KeyAndCertificates:
    """cryptography warns (UserWarning) when it falls back to BER; a user's file is not ours to
    warn about on stderr, and a broken one still ends as a one-line LoadError."""
    with warnings.catch_warnings(), quiet_serials():
        warnings.simplefilter("ignore", UserWarning)
        return pkcs12.load_pkcs12(data, password)


def _load_pkcs12(path: Path, data: bytes, password: Callable[[], str | None]) -> Loaded:
    try:  # an unprotected PFX first: no prompt for it
        parsed = _parse_pkcs12(data, None)
    except ValueError:
        secret = password()
        if secret is None:
            if looks_like_pkcs12(data):
                raise PasswordNeeded(f"{path}: PFX is password-protected: give --password or set "
                                     "FEDSCAN_PFX_PASSWORD (no terminal to ask on)") from None
            raise LoadError(f"{path}: not a certificate, PFX or CSR (PEM, DER or PKCS#12)") from None
        try:
            parsed = _parse_pkcs12(data, secret.encode())
        except ValueError:
            if looks_like_pkcs12(data):
                raise LoadError(f"{path}: wrong PFX password (or a corrupt PFX)") from None
            raise LoadError(f"{path}: not a certificate, PFX or CSR (PEM, DER or PKCS#12)") from None
    if parsed.cert is None:
        certs = [c.certificate for c in parsed.additional_certs]
        if not certs:
            raise LoadError(f"{path}: the PFX holds no certificate")
        certs = order_chain(certs)
    else:
        certs = [parsed.cert.certificate, *(c.certificate for c in parsed.additional_certs)]
    return Loaded(path, "pkcs12", tuple(certs), findings=tuple(_key_findings(parsed, certs[0])))


def _key_findings(parsed: pkcs12.PKCS12KeyAndCertificates, leaf: x509.Certificate) -> list[Finding]:
    if parsed.key is None:
        return [finding("pfx-key-missing", "the PFX holds no private key: it cannot be installed")]
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if parsed.key.public_key().public_bytes(enc, fmt) != leaf.public_key().public_bytes(enc, fmt):
        return [finding("pfx-key-mismatch", "the PFX's private key does not match its certificate")]
    return []


def looks_like_pkcs12(data: bytes) -> bool:
    """A DER SEQUENCE whose first element is INTEGER 3 (PFX version 3)."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    offset = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[offset : offset + 3] == b"\x02\x01\x03"
