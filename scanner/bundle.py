"""Bundle ordering: turning a bag of certificates (a PEM file, a PFX) into chains, leaf first.

Theory of this module
---------------------
Files carry no order anyone can rely on: administrators paste the root first, concatenate
last year's and this year's certificate, export a PFX whose "additional certificates" come in
any order. Ordering is done by issuer *names* only (no signatures, no trust): it just decides
which certificate is the leaf and in which order the rest is handed to the verifier, which
builds and judges the real path. Certificates whose names cannot even be decoded go last, for
the verifier to report.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509


def order_chain(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Put a bag of certificates (a PEM file in any order) in issuance order, leaf first.

    The leaf is the certificate that issued no other one in the bag, preferring a non-CA.
    Certificates whose names cannot even be decoded go last, for the verifier to report.
    """
    if len(certs) < 2:
        return list(certs)
    names = {id(c): _subject_issuer(c) for c in certs}
    readable = [c for c in certs if names[id(c)] is not None]
    broken = [c for c in certs if names[id(c)] is None]

    def subject(c: x509.Certificate) -> x509.Name:
        pair = names[id(c)]
        assert pair is not None
        return pair[0]

    def issuer(c: x509.Certificate) -> x509.Name:
        pair = names[id(c)]
        assert pair is not None
        return pair[1]

    issuing = {issuer(c) for c in readable if issuer(c) != subject(c)}
    candidates = sorted((c for c in readable if subject(c) not in issuing), key=is_ca)
    if not candidates:
        return list(certs)
    ordered = [candidates[0]]
    rest = [c for c in readable if c is not candidates[0]]
    while rest and issuer(ordered[-1]) != subject(ordered[-1]):
        nxt = next((c for c in rest if subject(c) == issuer(ordered[-1])), None)
        if nxt is None:
            break
        ordered.append(nxt)
        rest.remove(nxt)
    return ordered + rest + broken


def chains_in(certs: Sequence[x509.Certificate]) -> list[list[x509.Certificate]]:
    """Every end-entity certificate of a bag, each followed by its issuers from the bag.

    Administrators concatenate the old and the new certificate into one PEM; judging only
    whichever comes first would give a false OK, so each leaf is a chain of its own.
    """
    names = {id(c): _subject_issuer(c) for c in certs}
    readable = [c for c in certs if names[id(c)] is not None]
    issuing = {pair[1] for c in readable if (pair := names[id(c)]) and pair[0] != pair[1]}
    leaves = [
        c for c in readable if (pair := names[id(c)]) and pair[0] not in issuing and not is_ca(c)
    ]
    if len(leaves) < 2:
        return [order_chain(certs)]
    pool = [c for c in readable if not any(c is leaf for leaf in leaves)]
    return [_issuer_chain(leaf, pool, names) for leaf in leaves]


def _issuer_chain(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    names: dict[int, tuple[x509.Name, x509.Name] | None],
) -> list[x509.Certificate]:
    """``leaf`` followed by its issuers found in ``pool``, by issuer name."""
    chain, remaining = [leaf], list(pool)
    current = names[id(leaf)]
    while current is not None and current[0] != current[1]:
        issuer = current[1]
        nxt = next((c for c in remaining if (n := names[id(c)]) and n[0] == issuer), None)
        if nxt is None:
            break
        remaining.remove(nxt)
        chain.append(nxt)
        current = names[id(nxt)]
    return chain


def _subject_issuer(cert: x509.Certificate) -> tuple[x509.Name, x509.Name] | None:
    try:
        return cert.subject, cert.issuer
    except Exception:  # cryptography decodes names lazily; hostile bytes fail here
        return None


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except Exception:  # absent or undecodable: not known to be a CA
        return False
