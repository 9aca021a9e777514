"""The Verifier owns every verification cache: one per scan or command, never shared.

A census verifies the same chain thousands of times (a pool's nodes, one Edge answering for
many domains), so a repeated chain must be verified once; and since the caches live in the
Verifier, two Verifiers (another trust store, another time, another policy) never see each
other's answers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import pytest

import scanner.verify as verify_module
from scanner.findings import Severity
from scanner.lru import CacheStats, Lru
from scanner.names import Identity, IdentityKind
from scanner.offline import check_file
from scanner.trust import load_ca_file
from scanner.trust_path import build_path
from scanner.verify import Policy, TrustStore, Verifier, parse_request
from tests.conftest import CERTS, CONTOSO_IDENTITIES, NOW, pem_chain_der

SIP = (Identity("sip.contoso.test", IdentityKind.SRV_TARGET),)
XMPP = (Identity("contoso.test", IdentityKind.XMPP_DOMAIN),)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every real path building, counted (the Verifier's path cache sits in front of it)."""
    calls: list[str] = []
    original = build_path

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("built")
        return original(*args, **kwargs)

    monkeypatch.setattr(verify_module, "build_path", counting)
    return calls


def codes(findings: Any) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in findings]


def test_trust_is_built_once_per_chain_whatever_names_it_must_cover(
    test_trust: TrustStore, builds: list[str]
) -> None:
    """A domain's SIP and XMPP endpoints serve one chain judged for two identities."""
    chain = pem_chain_der("edge.pem")
    verifier = Verifier(test_trust, NOW, Policy())
    sip = verifier.verify(chain, SIP)
    xmpp = verifier.verify(chain, XMPP)
    assert (sip.trusted, xmpp.trusted, sip.findings, xmpp.findings) == (True, True, (), ())
    assert builds == ["built"]
    other_store = dataclasses.replace(test_trust)  # another Verifier never answers from this cache
    Verifier(other_store, NOW, Policy()).verify(chain, ())
    assert builds == ["built", "built"]


def test_a_repeated_chain_is_verified_once(test_trust: TrustStore, builds: list[str]) -> None:
    """A census meets one chain on many endpoints: one verification, the rest are hits."""
    chain = tuple(pem_chain_der("edge.pem"))
    verifier = Verifier(test_trust, NOW, Policy())
    first = verifier.judged(chain, CONTOSO_IDENTITIES)
    for _ in range(999):
        assert verifier.judged(chain, CONTOSO_IDENTITIES) is first
    assert builds == ["built"]
    stats = verifier.stats()
    assert stats["judgements"] == CacheStats(hits=999, misses=1, size=1)
    assert stats["certificates"] == CacheStats(hits=0, misses=len(chain), size=len(chain))
    assert stats["paths"] == CacheStats(hits=0, misses=1, size=1)
    assert (first.trusted, first.findings) == (True, ())
    assert first.leaf is not None and first.leaf.sha256 and len(first.chain) == len(chain) - 1
    # the same chain for other names is judged again (coverage differs) on the same path
    other = verifier.judged(chain, SIP)
    assert other is not first and [c.identity for c in other.coverage] == list(SIP)
    assert builds == ["built"]
    assert verifier.stats()["paths"] == CacheStats(hits=1, misses=1, size=1)


def test_two_verifiers_with_different_trust_stores_never_share_an_answer(
    test_trust: TrustStore, builds: list[str]
) -> None:
    chain = tuple(pem_chain_der("edge.pem"))
    wrong = Verifier(load_ca_file(CERTS / "untrusted-root.pem"), NOW, Policy())
    right = Verifier(test_trust, NOW, Policy())
    for _ in range(2):  # and in either order, however often
        refused = wrong.judged(chain, CONTOSO_IDENTITIES)
        trusted = right.judged(chain, CONTOSO_IDENTITIES)
        assert codes(refused.findings) == [("chain-untrusted", Severity.CRITICAL)]
        assert (refused.trusted, refused.path) == (False, ())
        assert (trusted.findings, trusted.trusted) == ((), True)
        assert trusted.path[:2] == chain[:2]
    assert builds == ["built", "built"]


def test_two_verifiers_at_different_times_never_share_an_answer(
    test_trust: TrustStore, builds: list[str]
) -> None:
    chain = tuple(pem_chain_der("edge.pem"))
    later = NOW.replace(year=2045)
    now, then = Verifier(test_trust, NOW, Policy()), Verifier(test_trust, later, Policy())
    for _ in range(2):
        fresh = now.judged(chain, CONTOSO_IDENTITIES)
        old = then.judged(chain, CONTOSO_IDENTITIES)
        assert fresh.findings == ()
        assert ("expired", Severity.CRITICAL) in codes(old.findings)
        assert fresh.leaf is not None and old.leaf is not None
        assert fresh.leaf.days_left is not None and old.leaf.days_left is not None
        assert fresh.leaf.days_left > 0 > old.leaf.days_left
    assert builds == ["built", "built"]


def test_two_verifiers_with_different_policies_never_share_an_answer(test_trust: TrustStore) -> None:
    chain = tuple(pem_chain_der("serverauth-only.pem"))
    required = Verifier(test_trust, NOW, Policy(client_auth_required=True))
    optional = Verifier(test_trust, NOW, Policy(client_auth_required=False))
    for _ in range(2):
        assert codes(required.judged(chain, CONTOSO_IDENTITIES).findings) == [
            ("eku-client-auth-missing", Severity.CRITICAL)
        ]
        assert codes(optional.judged(chain, CONTOSO_IDENTITIES).findings) == [
            ("eku-client-auth-missing", Severity.WARNING)
        ]


def test_served_order_and_file_order_are_cached_apart(test_trust: TrustStore) -> None:
    """A misordered chain is ``chain-order`` when a server sends it, nothing in a file."""
    chain = tuple(pem_chain_der("misordered.pem"))
    verifier = Verifier(test_trust, NOW, Policy())
    assert codes(verifier.judged(chain, CONTOSO_IDENTITIES).findings) == [("chain-order", Severity.WARNING)]
    assert verifier.judged(chain, CONTOSO_IDENTITIES, served=False).findings == ()


def test_a_lazy_trust_store_is_loaded_once_and_only_for_certificates(test_trust: TrustStore) -> None:
    """``fedscan cert request.csr`` reads no CA bundle; a run of many files reads it once."""
    loads: list[str] = []

    def load() -> TrustStore:
        loads.append("loaded")
        return test_trust

    verifier = Verifier(load, NOW, Policy())
    findings, _ = verifier.request(parse_request((CERTS / "edge.csr").read_bytes()), CONTOSO_IDENTITIES)
    assert findings == [] and loads == []
    for name in ("edge.pem", "serverauth-only.pem"):
        verifier.judged(tuple(pem_chain_der(name)), CONTOSO_IDENTITIES, served=False)
    assert loads == ["loaded"]
    assert verifier.trust is test_trust


def test_an_error_is_not_cached(test_trust: TrustStore, monkeypatch: pytest.MonkeyPatch) -> None:
    chain = tuple(pem_chain_der("edge.pem"))
    verifier = Verifier(test_trust, NOW, Policy())
    monkeypatch.setattr(verify_module, "build_path", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        verifier.judged(chain, SIP)
    monkeypatch.setattr(verify_module, "build_path", build_path)
    assert verifier.judged(chain, SIP).trusted is True


def test_lru_is_bounded_and_forgets_the_least_recently_used() -> None:
    made: list[int] = []

    def make(k: int) -> int:
        made.append(k)
        return k * 10

    lru: Lru[int, int] = Lru(2)
    assert [lru.get(k, functools.partial(make, k)) for k in (1, 2, 1, 3, 1, 2)] == [10, 20, 10, 30, 10, 20]
    assert made == [1, 2, 3, 2]  # 2 was the least recently used when 3 came in
    assert lru.stats == CacheStats(hits=2, misses=4, size=2)
    with pytest.raises(ValueError):
        Lru(0)



def test_two_certificates_differing_only_in_fractional_seconds_keep_their_own_instants(
    test_trust: TrustStore, tmp_path: Path
) -> None:
    """Both load as the same whole-seconds copy (same fingerprint); each must be judged by what
    it says itself: a process-wide table keyed by the copy once let the last one loaded speak
    for both, and a path cache keyed by fingerprint alone would judge the second on the first."""
    from base64 import b64encode

    a = pem_chain_der("fractional-notafter.pem")[0]  # notAfter 2029-12-31T23:59:59.25Z
    b = a.replace(b"20291231235959.25Z", b"20291231235959.75Z")
    assert b != a
    pem = b"".join(b"-----BEGIN CERTIFICATE-----\n" + b64encode(der) + b"\n-----END CERTIFICATE-----\n"
                   for der in (a, b))
    both = tmp_path / "both.pem"
    both.write_bytes(pem)
    between = dt.datetime(2029, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC)
    verifier = Verifier(test_trust, between, Policy())
    first, second = check_file(both, CONTOSO_IDENTITIES, verifier, lambda: None)
    assert (first.part, second.part) == ("certificate 1 of 2", "certificate 2 of 2")
    assert ("expired", Severity.CRITICAL) in codes(first.findings)  # .25 is past
    assert "expired" not in {f.code for f in second.findings}  # .75 is not yet
    assert (verifier.certificate(a).not_after.microsecond, verifier.certificate(b).not_after.microsecond) == (
        250000, 750000
    )
