"""The verifier on public chains as they are really served (issue 11): trust judged as a
server path, client-auth permission judged apart, dates and strength on the validated path,
the web PKI end-entity profile, exact instants, and a quiet stderr."""

from __future__ import annotations

import dataclasses
import datetime as dt
import warnings
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from scanner.cert_rules import strength_findings
from scanner.certinfo import SignatureInfo
from scanner.findings import Severity, Status
from scanner.loaders import load_file
from scanner.trust import load_ca_file
from scanner.verify import Policy, TrustStore, Verdict, parse_certificate, verify_chain
from tests.conftest import CERTS, CONTOSO_IDENTITIES, NOW, pem_chain_der

SERVER_ONLY_CA = "CN=Fedscan Test Server-Only CA,O=Fedscan Test PKI,C=US"
ROOT = "CN=Fedscan Test Root CA,O=Fedscan Test PKI,C=US"


DEFAULT = Policy()


def judge(name: str, trust: TrustStore, policy: Policy = DEFAULT, at: dt.datetime = NOW) -> Verdict:
    return verify_chain(pem_chain_der(name), CONTOSO_IDENTITIES, policy, trust, at)


def codes(name: str, trust: TrustStore, policy: Policy = DEFAULT) -> list[tuple[str, Severity]]:
    return sorted((f.code, f.severity) for f in judge(name, trust, policy).findings)


# --------------------------------------------------------------------------- 1. server path


def test_server_only_intermediate_is_trusted_and_names_the_ca(test_trust: TrustStore) -> None:
    verdict = judge("serverauth-ca.pem", test_trust)
    assert verdict.trusted is True
    assert verdict.path[1:] == (SERVER_ONLY_CA, ROOT)
    [f] = verdict.findings
    assert (f.code, f.severity, f.details["subject"], f.details["eku"]) == (
        "chain-client-auth-not-permitted",
        Severity.CRITICAL,
        SERVER_ONLY_CA,
        ["serverAuth"],
    )
    assert SERVER_ONLY_CA in f.message


def test_server_only_intermediate_is_a_warning_with_client_auth_optional(test_trust: TrustStore) -> None:
    policy = Policy(client_auth_required=False)
    assert codes("serverauth-ca.pem", test_trust, policy) == [
        ("chain-client-auth-not-permitted", Severity.WARNING)
    ]


def test_public_store_never_calls_a_server_only_chain_untrusted(test_trust: TrustStore) -> None:
    # a public root program: still no chain-untrusted, and no renewal-risk note (the
    # hierarchy already forbids clientAuth; the finding says more than the note would)
    public = dataclasses.replace(test_trust, public=True)
    assert codes("serverauth-ca.pem", public) == [("chain-client-auth-not-permitted", Severity.CRITICAL)]


def test_clientauth_only_leaf_is_still_judged_by_its_eku_not_untrusted(test_trust: TrustStore) -> None:
    # the web PKI default would refuse a clientAuth-only leaf; fedscan says why in its own code
    assert codes("clientauth-only.pem", test_trust) == [("eku-server-auth-missing", Severity.CRITICAL)]


# --------------------------------------------------------------------------- 2. dates on the path


def test_unneeded_expired_cross_sign_is_a_warning_naming_it(test_trust: TrustStore) -> None:
    verdict = judge("expired-cross-sign.pem", test_trust)
    assert verdict.trusted is True and verdict.status is Status.WARNING
    [f] = verdict.findings
    assert f.code == "chain-unused-expired"
    assert (f.details["subject"], f.details["issuer"]) == (
        ROOT,
        "CN=Fedscan Legacy Root CA,O=Fedscan Test PKI,C=US",
    )
    assert f.details["not_after"] == "2021-01-01T00:00:00+00:00"


def test_expired_leaf_is_always_expired_even_without_a_path() -> None:
    wrong = load_ca_file(CERTS / "untrusted-root.pem")
    verdict = judge("expired.pem", wrong)
    assert sorted(f.code for f in verdict.findings) == ["chain-untrusted", "expired"]


def test_a_needed_expired_certificate_on_the_path_is_expired(test_trust: TrustStore) -> None:
    # a store that trusts the root only in its cross-signed form (the way older clients saw
    # it): the expired cross-sign is then the path's anchor, so it is `expired`, not unused
    served = load_ca_file(CERTS / "expired-cross-sign.pem")  # leaf, intermediate, cross-sign
    only_cross_sign = dataclasses.replace(served, roots=served.roots[2:])
    verdict = judge("expired-cross-sign.pem", only_cross_sign)
    assert [(f.code, f.severity, f.details["subject"], f.details["position"]) for f in verdict.findings] == [
        ("expired", Severity.CRITICAL, ROOT, 2)
    ]


# --------------------------------------------------------------------------- 3. weak signatures


def test_sha1_intermediate_is_critical_and_named(test_trust: TrustStore) -> None:
    verdict = judge("sha1-intermediate.pem", test_trust)
    [f] = verdict.findings
    assert (f.code, f.severity, f.details["hash"]) == ("weak-signature", Severity.CRITICAL, "sha1")
    assert "Fedscan Test SHA-1 CA" in f.message
    assert verdict.status is Status.CRITICAL


def test_a_roots_own_self_signature_is_never_judged(test_trust: TrustStore) -> None:
    leaf, inter = (parse_certificate(d) for d in pem_chain_der("edge.pem"))
    root = parse_certificate(pem_chain_der("root.pem")[0])
    sha1 = SignatureInfo("sha1WithRSAEncryption", "sha1", False)
    md5 = SignatureInfo("md5WithRSAEncryption", "md5", False)
    assert strength_findings([leaf, inter, dataclasses.replace(root, signature=sha1)]) == []
    assert strength_findings([leaf, inter, dataclasses.replace(root, signature=md5)]) == []
    judged = strength_findings([leaf, dataclasses.replace(inter, signature=md5), root])
    assert [(f.code, f.severity, f.details["hash"]) for f in judged] == [
        ("weak-signature", Severity.CRITICAL, "md5")
    ]


# --------------------------------------------------------------------------- 4. leaf profile


def test_ca_certificate_as_leaf_is_refused(test_trust: TrustStore) -> None:
    verdict = judge("ca-leaf.pem", test_trust)
    [f] = verdict.findings
    assert (f.code, f.severity, f.details["ca"], f.details["key_cert_sign"]) == (
        "leaf-is-ca",
        Severity.CRITICAL,
        True,
        True,
    )
    assert verdict.trusted is True  # the path is sound; the leaf is what peers refuse


# --------------------------------------------------------------------------- 5. instants, serials


def test_expired_a_few_milliseconds_ago_is_expired_today(test_trust: TrustStore) -> None:
    just_after = dt.datetime(2021, 1, 1, 0, 0, 0, 3000, tzinfo=dt.UTC)
    verdict = judge("expired.pem", test_trust, at=just_after)
    [f] = [f for f in verdict.findings if f.code == "expired"]
    assert "expired today" in f.message and "days ago" not in f.message
    assert f.details["days_ago"] == 0
    later = dt.datetime(2021, 1, 3, 12, tzinfo=dt.UTC)
    verdict = judge("expired.pem", test_trust, at=later)
    [f] = [f for f in verdict.findings if f.code == "expired"]
    assert "(2 days ago)" in f.message and f.details["days_ago"] == 2
    # the exact instant: at notAfter itself the certificate is still valid (RFC 5280 4.1.2.5)
    at_end = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    verdict = judge("expired.pem", test_trust, at=at_end)
    assert [(f.code, f.message) for f in verdict.findings] == [
        ("expires-soon", "the certificate expires today (2021-01-01)")
    ]


def test_fractional_notafter_is_judged_at_the_exact_instant(test_trust: TrustStore) -> None:
    # notAfter 2029-12-31T23:59:59.25Z: cryptography refuses the DER; fedscan reads it as
    # OpenSSL does, and checks the signature over the bytes the issuer really signed
    verdict = judge("fractional-notafter.pem", test_trust)
    assert verdict.trusted is True and len(verdict.path) == 3
    expired = next(f for f in verdict.findings if f.code == "expired")
    assert expired.message == "the certificate expired today (2029-12-31T23:59:59.250000+00:00)"
    assert expired.details["days_ago"] == 0
    # a tenth of a second after the whole second: still valid (not cut to 23:59:59)
    before = dt.datetime(2029, 12, 31, 23, 59, 59, 100000, tzinfo=dt.UTC)
    early = judge("fractional-notafter.pem", test_trust, at=before)
    assert sorted((f.code, f.severity, f.message) for f in early.findings) == [
        ("expires-soon", Severity.CRITICAL, "the certificate expires today (2029-12-31)"),
        (
            "validity-fractional-seconds",
            Severity.WARNING,
            "the validity dates are encoded with fractional seconds (RFC 5280 forbids them; "
            "notAfter 2029-12-31T23:59:59.250000+00:00): OpenSSL and Windows accept the "
            "certificate, strict parsers (Go, rustls, Python cryptography) refuse it",
        ),
    ]


def test_a_forged_fractional_certificate_is_not_trusted(test_trust: TrustStore) -> None:
    # the walk checks the signature over the real TBS: flip one byte of the subject CN
    from base64 import b64decode

    from scanner.certload import exact_in

    pem = (CERTS / "fractional-notafter.pem").read_bytes()
    original = b64decode(b"".join(pem.split(b"-----")[2].split()))  # the leaf as signed
    der = bytearray(original)

    exact = exact_in(original)
    assert exact is not None
    at = exact.signed_tbs.index(b"sip.contoso.test")
    tbs_at = original.index(exact.signed_tbs)
    der[tbs_at + at] ^= 0x01  # "rip.contoso.test"
    chain = [bytes(der), pem_chain_der("fractional-notafter.pem")[1]]  # as a peer would serve it
    verdict = verify_chain(chain, CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    assert verdict.trusted is False
    assert "chain-incomplete" in {f.code for f in verdict.findings}


def test_zero_serial_is_an_info_finding_and_never_a_python_warning(
    test_trust: TrustStore, tmp_path: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any CryptographyDeprecationWarning fails the test
        loaded = load_file(CERTS / "zero-serial.pem", lambda: None)
        store = load_ca_file(CERTS / "zero-serial.pem")
        verdict = judge("zero-serial.pem", test_trust)
    assert len(loaded.certs) == 2 and len(store.roots) == 2
    assert [(f.code, f.severity, f.details["serial"]) for f in verdict.findings] == [
        ("serial-not-positive", Severity.INFO, "0")
    ]
    assert verdict.status is Status.OK


def test_web_pki_profile_break_is_a_warning_with_the_reason(test_trust: TrustStore) -> None:
    # a leaf without authorityKeyIdentifier (CA/B Forum requires one; OpenSSL does not care)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    inter = parse_certificate(pem_chain_der("intermediate.pem")[0]).cert
    inter_key = serialization.load_pem_private_key((CERTS / "intermediate.key").read_bytes(), None)
    assert isinstance(inter_key, rsa.RSAPrivateKey)
    edge = parse_certificate(pem_chain_der("edge.pem")[0]).cert
    builder = (
        x509.CertificateBuilder()
        .subject_name(edge.subject)
        .issuer_name(inter.subject)
        .public_key(edge.public_key())
        .serial_number(0x5000)
        .not_valid_before(edge.not_valid_before_utc)
        .not_valid_after(edge.not_valid_after_utc)
    )
    for ext in edge.extensions:
        if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
            builder = builder.add_extension(ext.value, ext.critical)
    leaf = builder.sign(inter_key, hashes.SHA256())
    chain = [leaf.public_bytes(serialization.Encoding.DER), pem_chain_der("intermediate.pem")[0]]
    verdict = verify_chain(chain, CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    assert verdict.trusted is True
    [f] = verdict.findings
    assert (f.code, f.severity) == ("leaf-profile-violation", Severity.WARNING)
    assert "2.5.29.35" in f.message and "encountered processing" not in f.message


def test_a_ca_that_excludes_server_auth_is_untrusted_and_named(test_trust: TrustStore) -> None:
    # the mirror image of serverauth-ca.pem: a clientAuth-only intermediate is no server chain
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from scanner.lab.certfactory import CLIENT, EKU, ca_builder, ca_name, new_key, utc

    root = parse_certificate(pem_chain_der("root.pem")[0]).cert
    root_key = serialization.load_pem_private_key((CERTS / "root.key").read_bytes(), None)
    assert isinstance(root_key, rsa.RSAPrivateKey)
    ca_key = new_key()
    name = ca_name("Client-Only CA", org=None)
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        ca_builder(name, ca_key.public_key(), root, not_after=utc(2060), serial=0x6000, path_length=0)
        .add_extension(x509.ExtendedKeyUsage([EKU[CLIENT]]), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    edge = parse_certificate(pem_chain_der("edge.pem")[0]).cert
    builder = (
        x509.CertificateBuilder().subject_name(edge.subject).issuer_name(name)
        .public_key(edge.public_key()).serial_number(0x6001)
        .not_valid_before(edge.not_valid_before_utc).not_valid_after(edge.not_valid_after_utc)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    for ext in edge.extensions:
        if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
            builder = builder.add_extension(ext.value, ext.critical)
    leaf = builder.sign(ca_key, hashes.SHA256())
    chain = [c.public_bytes(Encoding.DER) for c in (leaf, ca)]
    verdict = verify_chain(chain, CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    [f] = verdict.findings
    assert (f.code, f.severity, verdict.trusted) == ("chain-untrusted", Severity.CRITICAL, False)
    assert "CA certificate CN=Client-Only CA restricts its EKU to clientAuth" in f.message
