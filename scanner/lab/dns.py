"""The lab's authoritative DNS responder: dnspython messages on trio UDP and TCP, loopback only.

Theory of this module
---------------------
Discovery is only as testable as the DNS it talks to, so the lab answers from a plain mapping
``(owner, type) -> rdata texts`` the way an authoritative server would, and can misbehave on
purpose for the hostile cases.

The rules it keeps:

* Answering is a pure function (:func:`answer_query`) of the zone data and the question;
  the sockets around it only move bytes. Every owner name is authoritative data (AA set).
* A name exists if it owns a record or is an ancestor of one (an empty non-terminal):
  existing names without the asked type get NOERROR/NODATA, all others NXDOMAIN.
* CNAMEs are followed inside the data and the whole chain is returned; a loop stops at the
  first repeated name, so a looping zone gets a finite (looping) answer and the *client*
  has to notice. The rcode is that of the last name in the chain (RFC 6604).
* A UDP answer that does not fit the client's payload size (512, or its EDNS size) is sent
  with TC and no records; TCP always gets the whole answer.
* Zones named in ``signed`` are signed (:mod:`scanner.lab.dnssec`): a query with the DO bit
  gets the RRSIGs of its answer, and a negative answer the SOA and NSEC records proving it.
* Misbehaviours (``behaviours``) are keyed by query name: "servfail", "timeout" (never
  answer, on either transport), "truncate" (UDP: TC and no records; TCP: full answer).
* ``delay`` (seconds) holds every answer back, on either transport, without holding back the
  answers to other questions: a resolver's round-trip time, for the bench's RTT runs.
* Hostile input never ends the server: undecodable packets, responses and non-queries are
  dropped, a TCP connection that stalls or sends garbage is closed.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import trio

from scanner.lab.dnssec import Signed, sign

TTL = 300
MAX_CHAIN = 16
UDP_MAX = 65535
TCP_IDLE_SECONDS = 10.0
BIND_ATTEMPTS = 50

Records = Mapping[tuple[str, str], Sequence[str]]


class Behaviour(StrEnum):
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    TRUNCATE = "truncate"


@dataclass(frozen=True)
class Zone:
    """The lab's data, parsed once: rrsets by (owner, type) and every name that exists."""

    rrsets: Mapping[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset]
    names: frozenset[dns.name.Name]
    behaviours: Mapping[dns.name.Name, Behaviour]
    signed: Signed | None = None

    @classmethod
    def build(
        cls, records: Records, behaviours: Mapping[str, str] | None = None, *,
        signed: Sequence[str] = (), bogus: Sequence[str] = (),
    ) -> Zone:
        """Parse eagerly, so a typo in test data fails at startup and not as a silent NXDOMAIN.

        ``signed``: apexes to sign; ``bogus``: owner names whose signatures are broken.
        """
        rrsets: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset] = {}
        for (owner, rdtype_text), texts in records.items():
            name = dns.name.from_text(owner)
            rdtype = dns.rdatatype.from_text(rdtype_text)
            rrsets[(name, rdtype)] = dns.rrset.from_text_list(
                name, TTL, dns.rdataclass.IN, rdtype, list(texts)
            )
        dnssec = sign(rrsets, signed, bogus=bogus) if signed else None
        if dnssec is not None:
            rrsets.update(dnssec.rrsets)
        return cls(
            rrsets,
            frozenset(_with_ancestors(name for name, _ in rrsets)),
            {dns.name.from_text(k): Behaviour(v) for k, v in (behaviours or {}).items()},
            dnssec,
        )


def _with_ancestors(names: Iterable[dns.name.Name]) -> set[dns.name.Name]:
    """Every owner name and its ancestors: ancestors exist as empty non-terminals."""
    result: set[dns.name.Name] = set()
    for name in names:
        while name != dns.name.root and name not in result:
            result.add(name)
            name = name.parent()
    return result


def answer_query(zone: Zone, query: dns.message.Message) -> dns.message.Message:
    """The authoritative answer to a well-formed single-question query."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    if zone.behaviours.get(question.name) is Behaviour.SERVFAIL:
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
    rcode, chain = resolve_in_zone(zone, question.name, question.rdtype)
    response.set_rcode(rcode)
    response.answer.extend(chain)
    if query.ednsflags & dns.flags.DO:
        response.ednsflags |= dns.flags.DO  # RFC 3225: the DO bit is copied into the response
    if zone.signed is not None and query.ednsflags & dns.flags.DO:
        _add_dnssec(zone, zone.signed, response, question.name, rcode, chain)
    return response


def _add_dnssec(
    zone: Zone, signed: Signed, response: dns.message.Message, qname: dns.name.Name,
    rcode: dns.rcode.Rcode, chain: list[dns.rrset.RRset],
) -> None:
    """RRSIGs for the answer; SOA and NSEC proof for a negative answer (signed zones only)."""
    response.answer.extend(signed.signatures(chain))
    last = chain[-1] if chain else None
    final = last[0].target if last is not None and last.rdtype == dns.rdatatype.CNAME else None
    if last is not None and final is None:
        return  # a positive answer
    name = final or qname
    apex = signed.apex_of(name)
    if apex is not None:
        response.authority.extend(
            signed.denial(apex, name, zone.names, rcode == dns.rcode.NXDOMAIN)
        )


def resolve_in_zone(
    zone: Zone, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> tuple[dns.rcode.Rcode, list[dns.rrset.RRset]]:
    """Follow CNAMEs inside the data; stop at the first repeated name (a loop)."""
    chain: list[dns.rrset.RRset] = []
    seen = {qname}
    name = qname
    while len(chain) < MAX_CHAIN:
        direct = zone.rrsets.get((name, rdtype))
        if direct is not None:
            return dns.rcode.NOERROR, [*chain, direct]
        cname = zone.rrsets.get((name, dns.rdatatype.CNAME))
        if cname is None or rdtype == dns.rdatatype.CNAME:
            break
        chain.append(cname)
        name = cname[0].target
        if name in seen:
            return dns.rcode.NOERROR, chain
        seen.add(name)
    return (dns.rcode.NOERROR if name in zone.names else dns.rcode.NXDOMAIN), chain


def decode_query(wire: bytes) -> dns.message.Message | None:
    """A query we are willing to answer, or None: the server never trusts its input."""
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # hostile bytes can raise far more than DNSException; drop them all
        return None
    if query.flags & dns.flags.QR or query.opcode() != dns.opcode.QUERY:
        return None
    if len(query.question) != 1 or query.question[0].rdclass != dns.rdataclass.IN:
        return None
    return query


def udp_wire(query: dns.message.Message, response: dns.message.Message, truncate: bool) -> bytes:
    """Fit the answer into the client's UDP payload size, or send TC with no records."""
    limit = max(512, query.payload) if query.edns >= 0 else 512
    if not truncate:
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            pass
    response.answer.clear()
    response.authority.clear()
    response.additional.clear()
    response.flags |= dns.flags.TC
    return response.to_wire(max_size=limit)


async def serve_dns(
    records: Records,
    *,
    address: str = "127.0.0.1",
    port: int = 0,
    behaviours: Mapping[str, str] | None = None,
    zone: Zone | None = None,
    delay: float = 0.0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``records`` (or a prebuilt, e.g. signed, ``zone``) on UDP and TCP
    ``address:port`` until cancelled; reports the port."""
    zone = zone or Zone.build(records, behaviours)
    udp, tcp = await _bind_pair(address, port)
    with udp, tcp:
        tcp.listen(64)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_udp, zone, udp, delay, nursery)
            nursery.start_soon(_serve_tcp, zone, tcp, nursery, delay)
            task_status.started(udp.getsockname()[1])


async def _bind_pair(address: str, port: int) -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    """UDP and TCP on one port: with port 0, retry until the kernel's UDP pick is free for TCP."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(BIND_ATTEMPTS if port == 0 else 1):
        udp = trio.socket.socket(family, socket.SOCK_DGRAM)
        tcp = trio.socket.socket(family, socket.SOCK_STREAM)
        try:
            await udp.bind((address, port))
            await tcp.bind((address, udp.getsockname()[1]))
        except OSError as exc:
            udp.close()
            tcp.close()
            if exc.errno != errno.EADDRINUSE or port != 0:
                raise
            continue
        return udp, tcp
    raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {address}")


async def _serve_udp(zone: Zone, sock: trio.socket.SocketType, delay: float,
                     nursery: trio.Nursery) -> None:
    while True:
        try:
            wire, peer = await sock.recvfrom(UDP_MAX)
        except OSError:  # e.g. ICMP port unreachable reported on the next read
            continue
        reply = _udp_reply(zone, wire)
        if reply is None:
            continue
        if delay > 0:
            nursery.start_soon(_send_later, sock, reply, peer, delay)
        else:
            await _send(sock, reply, peer)


async def _send_later(sock: trio.socket.SocketType, reply: bytes, peer: Any,
                      delay: float) -> None:
    await trio.sleep(delay)
    await _send(sock, reply, peer)


async def _send(sock: trio.socket.SocketType, reply: bytes, peer: Any) -> None:
    with contextlib.suppress(OSError):
        await sock.sendto(reply, peer)


def _udp_reply(zone: Zone, wire: bytes) -> bytes | None:
    query = decode_query(wire)
    if query is None:
        return None
    behaviour = zone.behaviours.get(query.question[0].name)
    if behaviour is Behaviour.TIMEOUT:
        return None
    return _encode(lambda: udp_wire(query, answer_query(zone, query), behaviour is Behaviour.TRUNCATE))


def _tcp_reply(zone: Zone, query: dns.message.Message) -> bytes | None:
    if zone.behaviours.get(query.question[0].name) is Behaviour.TIMEOUT:
        return None
    wire = _encode(lambda: answer_query(zone, query).to_wire())
    return None if wire is None else len(wire).to_bytes(2, "big") + wire


def _encode(render: Callable[[], bytes]) -> bytes | None:
    """Render a reply, or drop it: a query built to upset the encoder must not end the server."""
    try:
        return render()
    except Exception:  # hostile EDNS/question content can fail in many dnspython layers
        return None


async def _serve_tcp(zone: Zone, listener: trio.socket.SocketType, nursery: trio.Nursery,
                     delay: float) -> None:
    while True:
        try:
            conn, _ = await listener.accept()
        except OSError:
            continue
        nursery.start_soon(_serve_connection, zone, trio.SocketStream(conn), delay)


async def _serve_connection(zone: Zone, stream: trio.SocketStream, delay: float = 0.0) -> None:
    """Answer length-prefixed queries until the peer stops, stalls or sends garbage."""
    async with stream:
        try:
            while True:
                with trio.move_on_after(TCP_IDLE_SECONDS) as idle:
                    query = await _read_tcp_query(stream)
                if idle.cancelled_caught or query is None:
                    return
                reply = _tcp_reply(zone, query)
                if reply is not None:
                    await trio.sleep(delay)
                    await stream.send_all(reply)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return


async def _read_tcp_query(stream: trio.SocketStream) -> dns.message.Message | None:
    prefix = await _read_exactly(stream, 2)
    if prefix is None:
        return None
    wire = await _read_exactly(stream, int.from_bytes(prefix, "big"))
    return None if wire is None else decode_query(wire)


async def _read_exactly(stream: trio.SocketStream, size: int) -> bytes | None:
    """Exactly ``size`` bytes, or None at end of stream (size is at most 65535 by framing)."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = await stream.receive_some(size - len(buffer))
        if not chunk:
            return None
        buffer += chunk
    return bytes(buffer)
