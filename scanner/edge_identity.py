"""Our Edge's certificate as we present it to partners: a PFX, or PEM with the key and chain.

Theory of this module
---------------------
* An acceptance scan presents what our Edge presents: the leaf *and* its intermediates (a
  partner that does not get the intermediate answers ``unknown_ca``), never the root.
* Everything that stops us presenting it is a :class:`~scanner.loaders.LoadError` of one line
  (the CLI exits 3): a wrong PFX password, a file without a private key, a key that does not
  match the certificate. The file is read once, up front, so a bad file is never one
  ``scan-error`` per endpoint.
* What we can say about the certificate without asking anyone (it lacks Client
  Authentication) is a warning, not a refusal to present it: the partner's verdict is the
  point of the scan.
* Our domains default to the names the certificate covers: ``sip.<d>`` means SIP domain
  ``<d>``; a bare ``<d>`` is an XMPP domain.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from scanner.bundle import is_ca, order_chain
from scanner.loaders import LoadError, PasswordNeeded, looks_like_pkcs12, read_input
from scanner.tls_client import ClientCredentials

_KEY_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", re.S)


@dataclass(frozen=True)
class EdgeIdentity:
    path: Path
    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    credentials: ClientCredentials

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.leaf.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def dns_names(self) -> tuple[str, ...]:
        try:
            san = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except (x509.ExtensionNotFound, ValueError):
            return ()
        return tuple(n.lower().rstrip(".") for n in san.value.get_values_for_type(x509.DNSName))

    @property
    def client_auth(self) -> bool:
        """May the certificate authenticate a TLS client? (No EKU extension: any purpose.)"""
        try:
            eku = self.leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        except x509.ExtensionNotFound:
            return True
        except ValueError:
            return False
        return ExtendedKeyUsageOID.CLIENT_AUTH in eku.value or \
            ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku.value

    def default_sip_domain(self) -> str | None:
        names = [n for n in self.dns_names if "*" not in n]
        sip = [n[4:] for n in names if n.startswith("sip.")]
        return next(iter(sip or names), None)

    def default_xmpp_domain(self) -> str | None:
        names = [n for n in self.dns_names if "*" not in n]
        sip = {n[4:] for n in names if n.startswith("sip.")}
        bare = [n for n in names if n in sip] or [n for n in names if not n.startswith("sip.")]
        return next(iter(bare or names), None)


def load_edge_identity(cert: Path, key: Path | None, password: Callable[[], str | None]) -> EdgeIdentity:
    """Read our certificate, its intermediates and its key; one-line LoadError otherwise."""
    data = read_input(cert)
    if b"-----BEGIN" in data:
        certs = _pem_certs(cert, data)
        key_data, key_path = (read_input(key), key) if key is not None else (data, cert)
        private_key = _pem_key(key_path, key_data, password)
    elif not looks_like_pkcs12(data):
        raise LoadError(f"{cert}: not a certificate file (a PFX, or PEM with the key and chain)")
    else:
        if key is not None:
            raise LoadError(f"{cert}: this is a PKCS#12 (PFX) file, which carries its own key: give it "
                            "alone (--client-cert FILE or --as-edge FILE), without --client-key")
        private_key, certs = _pfx(cert, data, password)
    leaf = _leaf_for(cert, key, private_key, certs)
    rest = [c for c in order_chain(certs) if c is not leaf and not _self_signed(c)]
    intermediates = tuple(c for c in rest if is_ca(c))
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    for c in (leaf, *intermediates):
        pem += c.public_bytes(serialization.Encoding.PEM)
    creds = ClientCredentials(cert, key or cert, pem)
    return EdgeIdentity(cert, leaf, intermediates, creds)


def _pem_certs(path: Path, data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise LoadError(f"{path}: no certificate in the file")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise LoadError(f"{path}: malformed PEM certificate") from None


def _pem_key(path: Path, data: bytes, password: Callable[[], str | None]) -> PrivateKeyTypes:
    block = _KEY_BLOCK.search(data)
    if block is None:
        raise LoadError(f"{path}: no private key in the file: give a PFX, a PEM holding the key "
                        "and the chain, or --client-key")
    try:
        return serialization.load_pem_private_key(block.group(0), None)
    except TypeError:  # encrypted
        secret = password()
        if secret is None:
            raise PasswordNeeded(f"{path}: the private key is encrypted: give --password") from None
        try:
            return serialization.load_pem_private_key(block.group(0), secret.encode())
        except (ValueError, TypeError):
            raise LoadError(f"{path}: wrong password for the private key") from None
    except ValueError:
        raise LoadError(f"{path}: malformed or unsupported private key") from None
    except UnsupportedAlgorithm:
        raise LoadError(f"{path}: unsupported private key type") from None


def _pfx(path: Path, data: bytes, password: Callable[[], str | None]
         ) -> tuple[PrivateKeyTypes, list[x509.Certificate]]:
    def parse(secret: bytes | None) -> pkcs12.PKCS12KeyAndCertificates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return pkcs12.load_pkcs12(data, secret)

    try:
        parsed = parse(None)
    except ValueError:
        secret = password()
        if secret is None:
            raise PasswordNeeded(f"{path}: PFX is password-protected: give --password or set "
                                 "FEDSCAN_PFX_PASSWORD (no terminal to ask on)") from None
        try:
            parsed = parse(secret.encode())
        except ValueError:
            raise LoadError(f"{path}: wrong PFX password (or not a PFX/PEM file)") from None
    certs = [parsed.cert.certificate] if parsed.cert else []
    certs += [c.certificate for c in parsed.additional_certs]
    if not certs:
        raise LoadError(f"{path}: the PFX holds no certificate")
    if parsed.key is None:
        raise LoadError(f"{path}: the PFX holds no private key: export it again with the key")
    return parsed.key, certs


def _spki(key: object) -> bytes:
    public: object = key.public_key() if hasattr(key, "public_key") else key
    assert hasattr(public, "public_bytes")
    out: bytes = public.public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    return out


def _leaf_for(path: Path, key_path: Path | None, key: PrivateKeyTypes,
              certs: list[x509.Certificate]) -> x509.Certificate:
    """The certificate the key belongs to (whatever the file's order)."""
    mine = _spki(key)
    for c in certs:
        if _spki(c.public_key()) == mine:
            return c
    if key_path is not None:
        raise LoadError(f"{path}: cannot load the client certificate/key: {key_path} is not the "
                        "private key of this certificate")
    raise LoadError(f"{path}: the private key does not match the certificate")


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject
