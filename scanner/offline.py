"""Offline checks of files before they are installed: certificates, chains, PFX and CSRs.

Glue between :mod:`scanner.loaders` (bytes from disk) and :mod:`scanner.verify` (pure rules):
a file's certificates are ordered (a PEM bundle may come in any order) and verified as a chain
by the command's :class:`~scanner.verify.Verifier` (one for all its files); a CSR is checked
for what it asks for. Results are plain data for the report writers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509

from scanner.bundle import chains_in
from scanner.certsummary import CertSummary, RequestSummary
from scanner.dane_renewal import renewal_findings
from scanner.findings import Finding, Status, status_of
from scanner.loaders import load_file
from scanner.names import Identity
from scanner.tlsa import TlsaAnswer
from scanner.verify import (
    Coverage,
    Judgement,
    Verifier,
    parse_request,
)


@dataclass(frozen=True)
class FileCheck:
    path: Path
    kind: str
    findings: tuple[Finding, ...]
    coverage: tuple[Coverage, ...]
    summary: CertSummary | RequestSummary | None  # None: no end-entity certificate was read
    chain: tuple[CertSummary, ...] = ()
    part: str | None = None  # "certificate 2 of 3" when a file holds several leaves
    # what a DANE renewal check judges (not in the JSON): the chain as DER, or the CSR
    chain_der: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    request_der: bytes | None = field(default=None, repr=False, compare=False)
    trusted: bool = field(default=False, repr=False, compare=False)

    @property
    def status(self) -> Status:
        return status_of(self.findings)

    @property
    def covered_names(self) -> list[str]:
        """Every name the certificate or request presents, for users who gave no namespace."""
        return list(self.summary.names) if self.summary is not None else []

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "part": self.part,
            "kind": self.kind,
            "status": self.status.name,
            "certificate" if self.kind != "csr" else "request":
                self.summary.to_json() if self.summary is not None else {},
            "chain": [c.to_json() for c in self.chain],
            "coverage": [c.to_json() for c in self.coverage],
            "findings": [f.to_json() for f in self.findings],
        }


def check_file(
    path: Path,
    identities: Sequence[Identity],
    verifier: Verifier,
    password: Callable[[], str | None],
) -> list[FileCheck]:
    """Check one file: one result per end-entity certificate in it (usually one; a CSR is
    one). Raises LoadError (one line) when the file cannot be read at all."""
    loaded = load_file(path, password)
    if loaded.csr_bytes is not None:
        info = parse_request(loaded.csr_bytes)
        findings, coverage = verifier.request(info, identities)
        return [FileCheck(path, "csr", tuple(findings), coverage, info.summary(),
                          request_der=loaded.csr_bytes)]
    chains = chains_in(loaded.certs)
    checks = []
    for index, certs in enumerate(chains, 1):
        der = tuple(loaded.der_of(c) for c in certs)
        judged = verifier.judged(der, tuple(identities), served=False)
        part = f"certificate {index} of {len(chains)}" if len(chains) > 1 else None
        checks.append(_from_judgement(path, loaded.kind, judged, loaded.findings, part, der))
    return checks


def _from_judgement(
    path: Path,
    kind: str,
    judged: Judgement,
    extra: Sequence[Finding],
    part: str | None,
    der: tuple[bytes, ...],
) -> FileCheck:
    return FileCheck(
        path, kind, (*extra, *judged.findings), judged.coverage, judged.leaf, judged.chain,
        part, chain_der=der, trusted=judged.trusted,
    )


def with_dane(check: FileCheck, answers: Sequence[TlsaAnswer]) -> FileCheck:
    """The check plus the renewal verdict of every TLSA RRset published now (``--dane``)."""
    label = f"{check.path.name}" + (f" ({check.part})" if check.part else "")
    extra: list[Finding] = []
    request = None
    if check.request_der is not None:
        data = check.request_der
        request = (x509.load_pem_x509_csr(data) if b"-----BEGIN" in data
                   else x509.load_der_x509_csr(data))
    for answer in answers:
        extra += renewal_findings(answer, label, chain=check.chain_der, request=request,
                                  pkix_valid=check.trusted)
    return replace(check, findings=(*check.findings, *extra))
