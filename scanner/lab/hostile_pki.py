"""Certificates for the hostile lab, made on first use from the lab's issuing CA by the lab's
certificate factory (:mod:`scanner.lab.certfactory`), so healthy endpoints are healthy and the
long chain and the 1 MB certificate differ from them in one respect only."""

from __future__ import annotations

import functools
import hashlib
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scanner.lab.certfactory import Issuer, ca_chain, leaf_builder, pem, utc
from scanner.lab.pki import lab_pki

LONG_CHAIN: Final = 100
BIG_CERT_BYTES: Final = 1 << 20

# --- certificates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostilePki:
    """Generated files (absolute paths without suffix, usable as ``Listener.cert``)."""

    healthy: str  # leaf + issuing CA, covering every name given
    long_chain: str  # leaf + LONG_CHAIN - 1 CAs above it
    big: str  # a leaf of over 1 MB (one huge private extension)
    healthy_der: bytes  # the healthy leaf's DER, for malformed variants


_TEMP: list[tempfile.TemporaryDirectory[str]] = []
_PKI_LOCK = threading.Lock()


def hostile_pki(names: Sequence[str]) -> HostilePki:
    """Certificates for the hostile lab, made once per process and name set."""
    with _PKI_LOCK:
        return _hostile_pki(tuple(names))


@functools.cache
def _hostile_pki(names: tuple[str, ...]) -> HostilePki:
    tmp = tempfile.TemporaryDirectory(prefix="fedscan-hostile-")
    _TEMP.append(tmp)  # removed at interpreter exit
    out = Path(tmp.name)
    pki = lab_pki()
    inter, root = pki.issuer("intermediate"), pki.issuer("root")
    key_pem = pki.key("edge").read_bytes()
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    serial = int.from_bytes(hashlib.sha256("\0".join(names).encode()).digest()[:8], "big")

    def leaf(issuer: Issuer, serial: int) -> x509.CertificateBuilder:
        """A healthy leaf, so that only the intended fault shows (without keyUsage and SKI, as
        the hostile lab has always served it: its reports quote the leaf's size)."""
        return leaf_builder(names, key.public_key(), issuer.cert, serial=serial, not_before=utc(2026),
                            not_after=utc(2040), key_usage=False, subject_key_id=False)

    healthy = leaf(inter, serial).sign(inter.key, hashes.SHA256())
    (out / "healthy.pem").write_bytes(pem(healthy, inter.cert))

    # 99 EC CAs (cheap to make), each issuing the next, the top one issued by the root
    cas = ca_chain(root, LONG_CHAIN - 1, "Hostile Long Chain CA", not_after=utc(2060))
    long_leaf = leaf(cas[-1], serial + 1).sign(cas[-1].key, hashes.SHA256())
    (out / "long.pem").write_bytes(pem(long_leaf, *reversed([ca.cert for ca in cas])))

    filler = b"\x04\x83" + BIG_CERT_BYTES.to_bytes(3, "big") + b"A" * BIG_CERT_BYTES
    big = (leaf(inter, serial + 2)
           .add_extension(x509.UnrecognizedExtension(
               x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), filler), critical=False)
           .sign(inter.key, hashes.SHA256()))
    (out / "big.pem").write_bytes(pem(big, inter.cert))
    for stem in ("healthy", "long", "big"):
        (out / f"{stem}.key").write_bytes(key_pem)
    return HostilePki(str(out / "healthy"), str(out / "long"), str(out / "big"),
                      healthy.public_bytes(serialization.Encoding.DER))


def malformed_der(der: bytes) -> bytes:
    """The healthy leaf with its outer length claiming one byte more than there is."""
    assert der[0] == 0x30 and der[1] == 0x82
    length = int.from_bytes(der[2:4], "big") + 1
    return der[:2] + length.to_bytes(2, "big") + der[4:]
