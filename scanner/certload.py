"""Loading certificates as peers do: quietly, and tolerating what OpenSSL tolerates.

Theory of this module
---------------------
Two kinds of certificates exist in real chains and trust stores that ``cryptography`` either
warns about or refuses, while the OpenSSL and Windows peers of a federation accept them:

* a zero or negative serial number (RFC 5280 4.1.2.2 asks for a positive one): cryptography
  prints a ``CryptographyDeprecationWarning`` on every load and every read of the serial.
  stderr carries fedscan's own one-line messages only, so the warning is silenced here, for
  exactly that message, and the fact becomes the ``serial-not-positive`` finding;
* a validity time in GeneralizedTime with fractional seconds (``20291231235959.25Z``; RFC 5280
  4.1.2.5.2 forbids them, DER allows them, OpenSSL reads them): cryptography refuses the whole
  certificate. It is loaded here from a copy whose times are cut to whole seconds, and the
  exact instants and the bytes the issuer really signed are read from the original DER
  (:func:`exact_in`), so dates are judged at the exact instant and the signature is checked
  over the true TBS. The ``validity-fractional-seconds`` finding says what strict parsers will
  do with it.

The original DER is the truth, so it travels with the certificate: the verifier parses what
the peer served, a file's certificates keep the DER they were read from
(:func:`load_pem_with_der`, :class:`scanner.loaders.Loaded`), and so do a CA file's roots
(:class:`scanner.trust_path.TrustStore`). Nothing is remembered here: no table keyed by the
copy, shared by the whole process, that a long run could outgrow.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from base64 import b64decode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

_SERIAL_WARNING = r"Parsed a serial number which wasn't positive"


@contextmanager
def quiet_serials() -> Iterator[None]:
    """Silence cryptography's warning about non-positive serials, and only that one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _SERIAL_WARNING, CryptographyDeprecationWarning)
        yield


def serial_number(cert: x509.Certificate) -> int:
    with quiet_serials():
        return cert.serial_number


@dataclass(frozen=True)
class Exact:
    """What a certificate with fractional-second times really says."""

    not_before: dt.datetime
    not_after: dt.datetime
    signed_tbs: bytes  # the TBSCertificate the issuer signed (fractions included)


def exact_in(der: bytes) -> Exact | None:
    """The exact times and signed bytes of the certificate ``der``, when its validity has
    fractional seconds (None otherwise, or when it is not a certificate at all)."""
    whole = _whole_seconds(der)
    return None if whole is None else whole[1]


def load_der_exact(der: bytes) -> tuple[x509.Certificate, Exact | None]:
    """``load_der_x509_certificate``, quiet about serials, tolerant of fractional seconds:
    the certificate (a whole-seconds copy for those) and what it really says. Raises
    ValueError as cryptography does for anything else."""
    with quiet_serials():
        try:
            return x509.load_der_x509_certificate(der), None
        except ValueError:
            whole = _whole_seconds(der)
            if whole is None:
                raise
            copy_der, exact = whole
            return x509.load_der_x509_certificate(copy_der), exact


def load_der_certificate(der: bytes) -> x509.Certificate:
    """:func:`load_der_exact` without the exact times (for objects whose dates do not matter)."""
    return load_der_exact(der)[0]


_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(.*?)-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.S,
)


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM text, quiet and tolerant as :func:`load_der_certificate`."""
    return [cert for cert, _ in load_pem_with_der(data)]


def load_pem_with_der(data: bytes) -> list[tuple[x509.Certificate, bytes]]:
    """Every certificate of a PEM text with the DER it was read from: for a certificate with
    fractional-second times, the original (the loaded copy's own DER says other times)."""
    with quiet_serials():
        try:
            return [(c, c.public_bytes(Encoding.DER)) for c in x509.load_pem_x509_certificates(data)]
        except ValueError:
            blocks = _PEM_BLOCK.findall(data)
            if not blocks:
                raise
    try:
        ders = [b64decode(b"".join(block.split()), validate=True) for block in blocks]
        return [(load_der_certificate(der), der) for der in ders]
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise ValueError(str(exc)) from None


# --------------------------------------------------------------------------- DER


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the TLV at ``at``; ValueError when malformed."""
    if at + 2 > len(data):
        raise ValueError("truncated")
    tag, length, start = data[at], data[at + 1], at + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or start + n > len(data):
            raise ValueError("bad length")
        length, start = int.from_bytes(data[start : start + n], "big"), start + n
    if start + length > len(data):
        raise ValueError("truncated")
    return tag, start, start + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, header start, contents start, end) of each TLV in ``data[start:end]``."""
    out = []
    while start < end:
        tag, body, stop = _tlv(data, start)
        out.append((tag, start, body, stop))
        start = stop
    return out


def _encode(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


_FRACTIONAL = re.compile(rb"^(\d{14})\.(\d{1,9})Z$")


def _whole_seconds(der: bytes) -> tuple[bytes, Exact] | None:
    """A copy of ``der`` whose GeneralizedTime validity has no fractional seconds, with the
    exact times; None when the certificate has none (the refusal was for something else)."""
    try:
        _, cert_body, cert_end = _tlv(der, 0)
        parts = _children(der, cert_body, cert_end)  # tbs, signatureAlgorithm, signature
        if len(parts) != 3:
            return None
        _, tbs_start, tbs_body, tbs_end = parts[0]
        fields = _children(der, tbs_body, tbs_end)
        index = 4 if fields and fields[0][0] == 0xA0 else 3  # [0] version is optional
        _, v_start, v_body, v_end = fields[index]
        times = _children(der, v_body, v_end)
        if len(times) != 2:
            return None
        exact: list[dt.datetime | None] = []
        cut: list[bytes] = []
        for tag, head, body, stop in times:
            raw = der[body:stop]
            match = _FRACTIONAL.match(raw) if tag == 0x18 else None
            if match is None:
                cut.append(der[head:stop])
                exact.append(None)  # whole seconds already: read from the loaded copy below
                continue
            whole = dt.datetime.strptime(match.group(1).decode(), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
            micro = int(match.group(2).decode().ljust(6, "0")[:6])
            exact.append(whole + dt.timedelta(microseconds=micro))
            cut.append(_encode(0x18, match.group(1) + b"Z"))
        if exact == [None, None]:
            return None
        validity = _encode(0x30, b"".join(cut))
        tbs = _encode(0x30, der[tbs_body:v_start] + validity + der[v_end:tbs_end])
        copy = _encode(0x30, tbs + der[tbs_end:cert_end])
        loaded = x509.load_der_x509_certificate(copy)
    except (ValueError, IndexError):
        return None
    return copy, Exact(
        exact[0] or loaded.not_valid_before_utc,
        exact[1] or loaded.not_valid_after_utc,
        der[tbs_start:tbs_end],
    )
