"""Trust anchors: Mozilla's root program (certifi) by default, or the administrator's bundle.

Reading files happens here, at the edge, so the verifier stays pure. The default store is
marked *public*: public-CA policy (the clientAuth removal) applies to chains that reach it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from scanner.certload import load_der_certificate, load_pem_with_der
from scanner.trust_path import TrustStore


class TrustStoreError(ValueError):
    """A CA bundle that cannot be used, with a one-line reason."""


@lru_cache(maxsize=1)
def mozilla_roots() -> TrustStore:
    import certifi  # lazily: only scans that verify need it

    data = Path(certifi.where()).read_bytes()
    # A few long-lived roots carry non-positive serials; they are still Mozilla's roots.
    roots = load_pem_with_der(data)
    return TrustStore(tuple(c for c, _ in roots), True, "Mozilla roots (certifi)",
                      tuple(der for _, der in roots))


def load_ca_file(path: Path) -> TrustStore:
    if path.exists() and not path.is_file():  # a FIFO would block forever, a directory fails
        raise TrustStoreError(f"cannot read CA file {path}: not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustStoreError(f"cannot read CA file {path}: {exc.strerror or exc}") from None
    try:
        pem = b"-----BEGIN" in data
        roots = load_pem_with_der(data) if pem else [(load_der_certificate(data), data)]
    except ValueError:
        # cryptography's text ("ParseError { kind: ShortData ... }") means nothing to a reader
        found = "a PEM file whose certificates do not parse" if pem else \
            "neither PEM certificates nor one DER certificate"
        raise TrustStoreError(f"CA file {path} holds no usable certificate: {found}") from None
    return TrustStore(tuple(c for c, _ in roots), False, f"CA file {path.name}",
                      tuple(der for _, der in roots))


def trust_store(ca_file: Path | None) -> TrustStore:
    return mozilla_roots() if ca_file is None else load_ca_file(ca_file)
