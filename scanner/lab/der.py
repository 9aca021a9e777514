"""DER surgery for test certificates that ``CertificateBuilder`` refuses to make.

Real chains carry certificates no modern builder will encode: a zero or negative serial, a
validity time with fractional seconds, an intermediate signed with SHA-1. The lab (and the
test corpus, ``test-certs/make_corpus.py``) build the certificate normally, then rewrite the
TBSCertificate fields here and sign the new TBS with the issuer's RSA key. Only the
top-level structure is touched, with a minimal TLV reader: enough for certificates we made.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: AlgorithmIdentifier sha1WithRSAEncryption (1.2.840.113549.1.1.5), NULL parameters.
SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")


def der_length(n: int) -> bytes:
    """DER definite length: short form below 128, long form otherwise."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + der_length(len(body)) + body


def der_body(tlv: bytes) -> bytes:
    first = tlv[1]
    offset = 2 + (first & 0x7F if first & 0x80 else 0)
    return tlv[offset:]


def der_children(body: bytes) -> list[bytes]:
    """The complete TLVs inside a constructed value's body, in order."""
    out, i = [], 0
    while i < len(body):
        length, offset = body[i + 1], 2
        if length & 0x80:
            n = length & 0x7F
            length, offset = int.from_bytes(body[i + 2 : i + 2 + n], "big"), 2 + n
        out.append(body[i : i + offset + length])
        i += offset + length
    return out


def resign(
    cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    *,
    serial: int | None = None,
    not_after: str | None = None,
    sha1: bool = False,
) -> bytes:
    """The DER of ``cert`` with a rewritten serial (any integer, zero and negative
    included), a notAfter written as the GeneralizedTime text given (e.g.
    ``"20291231235959.25Z"``), and/or a SHA-1 signature; signed again by ``issuer_key``
    (PKCS#1 v1.5). DER, not a Certificate: cryptography cannot load every result."""
    fields = der_children(der_body(cert.tbs_certificate_bytes))
    # TBSCertificate v3: [0] version, serial, signature, issuer, validity, subject, spki, [3]
    if serial is not None:
        size = max(1, (serial.bit_length() + 8) // 8)
        fields[1] = der_tlv(0x02, serial.to_bytes(size, "big", signed=True))
    if sha1:
        fields[2] = SHA1_RSA
    if not_after is not None:
        not_before = der_children(der_body(fields[4]))[0]
        fields[4] = der_tlv(0x30, not_before + der_tlv(0x18, not_after.encode("ascii")))
    tbs = der_tlv(0x30, b"".join(fields))
    outer = der_children(der_body(cert.public_bytes(serialization.Encoding.DER)))
    algorithm = SHA1_RSA if sha1 else outer[1]
    digest: hashes.HashAlgorithm = hashes.SHA1() if sha1 else hashes.SHA256()
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), digest)
    return der_tlv(0x30, tbs + algorithm + der_tlv(0x03, b"\x00" + signature))


def pem_of(*ders: bytes) -> bytes:
    """PEM of DER certificates, written by hand (cryptography cannot load every one)."""
    from base64 import b64encode

    out = []
    for der in ders:
        text = b64encode(der).decode("ascii")
        lines = [text[i : i + 64] for i in range(0, len(text), 64)]
        out.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n")
    return "".join(out).encode("ascii")
