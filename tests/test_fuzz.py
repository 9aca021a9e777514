"""Bounded fuzzing (hypothesis) of everything that parses what a peer or a user hands us.

* The XMPP negotiator on structured garbage: valid transcripts, cut and mutated (byte flips,
  dangerous tokens inserted, ranges deleted or repeated). Only its own RemoteProtocolError may
  escape, and the outcome (events, then the error) never depends on the chunking.
* The certificate path: mutated real DER from test-certs (bit flips, truncations, DER length
  edits) through ``verify_chain`` (always a Verdict with findings), the file loaders (a result
  or a one-line LoadError, nothing else) and ``parse_certificate_message`` (never raises,
  returns only slices of its input).

Each test is capped by ``max_examples``; the whole file runs in a few seconds in ``make test``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.findings import CODES
from scanner.lab.behaviours import BILLION_LAUGHS
from scanner.lab.wire import certificate_message
from scanner.loaders import LoadError
from scanner.names import Identity, IdentityKind
from scanner.offline import check_file
from scanner.tlswire import parse_certificate_message
from scanner.verify import Policy, TrustStore, Verifier, verify_chain
from scanner.xmpp import RemoteProtocolError
from tests.conftest import CERTS, NOW, pem_chain_der
from tests.test_xmpp import TRANSCRIPT, drive, split

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- XMPP: structured garbage -----------------------------------------------------------------------

TOKENS = [b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&a;", b"&amp;", b"<!--c-->", b"<?pi x?>",
          b"]]>", b"<![CDATA[x]]>", b"</stream:stream>", b"<stream:features>",
          b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", b"\x00", b"\xff\xfe", b"'", b'"',
          b">", b"<", b"xmlns:stream='x'", b" " * 50, BILLION_LAUGHS[:80]]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.sampled_from(TOKENS)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 40)),
    st.tuples(st.just("repeat"), st.integers(0, 10_000), st.integers(1, 40)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    buf = bytearray(data)
    for op, at, arg in mutations:
        pos = at % (len(buf) + 1)
        if op == "flip" and buf:
            assert isinstance(arg, int)
            buf[pos % len(buf)] ^= arg
        elif op == "insert":
            assert isinstance(arg, bytes)
            buf[pos:pos] = arg
        elif op == "delete":
            assert isinstance(arg, int)
            del buf[pos : pos + arg]
        elif op == "repeat":
            assert isinstance(arg, int)
            buf[pos:pos] = buf[pos : pos + arg]
    return bytes(buf)


def outcome(chunks: list[bytes]) -> tuple[list[object], str | None]:
    """The events a client sees, then the peer error (if any), as comparable values."""
    events: list[object] = []
    try:
        events = list(drive(chunks))
    except RemoteProtocolError as exc:
        # the "(received b'...')" snippet shows what had arrived when the fault was found,
        # which does depend on chunking; the fault itself must not
        return events, str(exc).split(" (received ")[0]
    return events, None


@FUZZ
@given(st.integers(0, len(TRANSCRIPT)), st.lists(mutation, max_size=4),
       st.lists(st.integers(0, 2_000), max_size=12), st.lists(st.integers(0, 2_000), max_size=12))
def test_xmpp_mutated_transcripts_fail_only_as_remote_errors_and_ignore_chunking(
    prefix: int, mutations: list[tuple[str, int, object]], cuts_a: list[int], cuts_b: list[int]
) -> None:
    data = mutate(TRANSCRIPT[:prefix], mutations)
    a = outcome(split(data, cuts_a))  # anything but RemoteProtocolError propagates: a failure
    b = outcome(split(data, cuts_b))
    assert a[1] == b[1]
    assert a[0] == b[0]


# --- certificates: mutated real DER ------------------------------------------------------------------

EDGE = pem_chain_der("edge.pem")  # leaf, issuing CA
IDENTITIES = (Identity("sip.contoso.test", IdentityKind.SRV_TARGET, "SRV target"),)
POLICY = Policy()


def trust() -> TrustStore:
    from scanner.trust import load_ca_file

    return load_ca_file(CERTS / "ca-bundle.pem")


TRUST = trust()


def length_offsets(der: bytes) -> list[int]:
    """Offsets of DER long-form length octets (0x81/0x82 + length): the fields to edit."""
    return [i for i in range(1, len(der) - 2) if der[i] in (0x81, 0x82) and der[i - 1] in
            (0x30, 0x31, 0x04, 0x03, 0xA0, 0xA3)]


LEAF_LENGTHS = length_offsets(EDGE[0])

der_mutation = st.one_of(
    st.tuples(st.just("bitflip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("length"), st.sampled_from(LEAF_LENGTHS), st.integers(-3, 3)),
    st.tuples(st.just("append"), st.integers(1, 64), st.just(0)),
)


def mutate_der(der: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(der)
    for op, at, arg in mutations:
        if not buf:
            break
        if op == "bitflip":
            buf[at % len(buf)] ^= 1 << arg
        elif op == "truncate":
            del buf[at % len(buf) :]
        elif op == "length" and at + 2 < len(buf):
            width = buf[at] & 0x7F
            value = int.from_bytes(buf[at + 1 : at + 1 + width], "big") + arg
            buf[at + 1 : at + 1 + width] = (value % (256**width)).to_bytes(width, "big")
        elif op == "append":
            buf += b"\x00" * at
    return bytes(buf)


@FUZZ
@given(st.lists(der_mutation, min_size=1, max_size=3))
def test_verify_chain_on_mutated_leaf_always_returns_findings(
    mutations: list[tuple[str, int, int]],
) -> None:
    leaf, intermediate = EDGE
    chain = [mutate_der(leaf, mutations), intermediate]
    verdict = verify_chain(chain, IDENTITIES, POLICY, TRUST, NOW)
    assert all(f.code in CODES for f in verdict.findings)
    if chain != EDGE:  # any change breaks either the DER or a signature: never silently OK
        assert verdict.findings


# The served intermediate, mutated so that its public key no longer decodes: the walk that
# explains an untrusted chain asks that key to check the leaf's signature; it must become a
# finding, never an exception out of the scan task.
BAD_INTERMEDIATE_KEY = [("length", 214, 1)]


def test_verify_chain_with_an_intermediate_whose_key_does_not_decode() -> None:
    leaf, intermediate = EDGE
    chain = [leaf, mutate_der(intermediate, BAD_INTERMEDIATE_KEY)]
    verdict = verify_chain(chain, IDENTITIES, POLICY, TRUST, NOW)
    assert [f.code for f in verdict.findings if f.code.startswith("chain-")] == ["chain-incomplete"]


def _pfx() -> bytes:
    return (CERTS / "edge.pfx").read_bytes()


SOURCES = {
    "der": EDGE[0],
    "pem": (CERTS / "edge.pem").read_bytes(),
    "pfx": _pfx(),
    "csr": (CERTS / "edge.csr").read_bytes(),
}


@FUZZ
@given(st.sampled_from(sorted(SOURCES)), st.lists(der_mutation, min_size=1, max_size=3))
def test_file_loading_of_mutated_files_is_a_result_or_a_load_error(
    source: str, mutations: list[tuple[str, int, int]]
) -> None:
    data = mutate_der(SOURCES[source], mutations)
    fd, name = tempfile.mkstemp(prefix="fedscan-fuzz-")
    try:
        os.write(fd, data)
        os.close(fd)
        with contextlib.suppress(LoadError):
            results = check_file(Path(name), IDENTITIES, Verifier(TRUST, NOW, POLICY),
                                 lambda: "fedscan")
            assert results and all(f.code in CODES for r in results for f in r.findings)
    finally:
        Path(name).unlink()


# --- the Certificate handshake message ---------------------------------------------------------------


def tls13_message(ders: list[bytes]) -> bytes:
    entries = b"".join(len(d).to_bytes(3, "big") + d + b"\x00\x00" for d in ders)
    return b"\x00" + len(entries).to_bytes(3, "big") + entries


@FUZZ
@given(st.booleans(), st.lists(der_mutation, max_size=3), st.binary(max_size=16))
def test_parse_certificate_message_never_raises_and_returns_slices(
    tls13: bool, mutations: list[tuple[str, int, int]], junk: bytes
) -> None:
    ders = [*EDGE, junk] if junk else list(EDGE)
    body = tls13_message(ders) if tls13 else certificate_message(ders)[4:]
    body = mutate_der(body, mutations)
    certs = parse_certificate_message(body, tls13=tls13)
    assert isinstance(certs, tuple)
    assert sum(len(c) for c in certs) <= len(body)
    assert all(c in body for c in certs)
    if not mutations:
        assert list(certs) == ders
    for cert in certs:  # whatever was cut out, the verifier turns it into findings
        verdict = verify_chain([cert], IDENTITIES, POLICY, TRUST, NOW)
        assert all(f.code in CODES for f in verdict.findings)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_parse_certificate_message_on_arbitrary_bytes(body: bytes, tls13: bool) -> None:
    certs = parse_certificate_message(body, tls13=tls13)
    assert all(c in body for c in certs)


def test_encodings_round_trip() -> None:
    assert parse_certificate_message(certificate_message(EDGE)[4:], tls13=False) == tuple(EDGE)
    assert parse_certificate_message(tls13_message(EDGE), tls13=True) == tuple(EDGE)
