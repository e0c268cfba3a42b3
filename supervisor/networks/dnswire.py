"""DNS messages on the wire (RFC 1035, EDNS0 of RFC 6891): what hawserd's per-network DNS server
reads and writes. Names are read with compression pointers followed; a name's text has no trailing
dot, and a label byte that is not a letter, digit, '-' or '_' is written \\DDD (master-file style),
so an odd name never equals a container's name."""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 41, 255
IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
QR, AA, TC, RD, RA, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0010
OPCODE_SHIFT, OPCODE_MASK, RCODE_MASK = 11, 0x7800, 0x000F

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")   # type, class, ttl, rdlength
MAX_UDP = 512                       # without EDNS (RFC 1035 4.2.1)
OUR_EDNS_SIZE = 1232                # what we advertise: the DNS flag day 2020 value
MAX_NAME = 255                      # octets on the wire, with the length bytes
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class WireError(ValueError):
    """A malformed message: what is wrong and at which byte."""


@dataclass(slots=True)
class Question:
    name: str
    qtype: int
    qclass: int


@dataclass(slots=True)
class Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: object    # A/AAAA: address text; CNAME/PTR/NS: a name; other types: the raw rdata


@dataclass(slots=True)
class Message:
    id: int
    flags: int
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authorities: list[Record] = field(default_factory=list)
    additionals: list[Record] = field(default_factory=list)
    question_end: int = HEADER.size   # where the question section ends in the parsed bytes

    @property
    def rcode(self) -> int:
        return self.flags & RCODE_MASK

    @property
    def opcode(self) -> int:
        return (self.flags & OPCODE_MASK) >> OPCODE_SHIFT

    def edns_size(self) -> int | None:
        """The UDP payload size the sender's OPT record announces, None without one."""
        for rec in self.additionals:
            if rec.rtype == OPT:
                return rec.rclass
        return None


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at offset and the offset after it (after its first pointer, if compressed)."""
    labels, end, wire_len, floor = [], None, 0, offset
    while True:
        if offset >= len(data):
            raise WireError(f"name runs past the end of the message (byte {offset})")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError(f"compression pointer cut short at byte {offset}")
            target = ((length & 0x3F) << 8) | data[offset + 1]
            # Each pointer must point before where the previous one led: no loop can form.
            if target >= floor:
                raise WireError(f"compression pointer at byte {offset} does not point back")
            if end is None:
                end = offset + 2
            offset = floor = target
            continue
        if length & 0xC0:
            raise WireError(f"unknown label type {length >> 6:#x} at byte {offset}")
        wire_len += length + 1
        if wire_len > MAX_NAME:
            raise WireError(f"name longer than {MAX_NAME} octets at byte {offset}")
        if length == 0:
            return ".".join(labels), (offset + 1 if end is None else end)
        label = data[offset + 1:offset + 1 + length]
        if len(label) != length:
            raise WireError(f"label runs past the end of the message (byte {offset})")
        labels.append(_label_text(label))
        offset += 1 + length


def _label_text(label: bytes) -> str:
    if all(b in _PLAIN for b in label):
        return label.decode("ascii")
    return "".join(chr(b) if b in _PLAIN else f"\\{b:03d}" for b in label)


def encode_name(name: str) -> bytes:
    """A plain host name ('web', 'example.test.', '' or '.' for the root) in wire form."""
    name = name.rstrip(".") if name not in ("", ".") else ""
    out = bytearray()
    for label in name.split(".") if name else ():
        raw = label.encode("ascii", "strict") if label.isascii() else b""
        if not raw or len(raw) > 63:
            raise ValueError(f"bad DNS name {name!r}: label {label!r} must be 1 to 63 ASCII octets")
        out += bytes((len(raw),)) + raw
    out.append(0)
    if len(out) > MAX_NAME:
        raise ValueError(f"bad DNS name {name!r}: longer than {MAX_NAME} octets")
    return bytes(out)


def _read_question(data: bytes, offset: int) -> tuple[Question, int]:
    name, offset = read_name(data, offset)
    if offset + 4 > len(data):
        raise WireError(f"question cut short at byte {offset}")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    return Question(name, qtype, qclass), offset + 4


def _read_record(data: bytes, offset: int) -> tuple[Record, int]:
    name, offset = read_name(data, offset)
    if offset + RR_FIXED.size > len(data):
        raise WireError(f"record cut short at byte {offset}")
    rtype, rclass, ttl, rdlength = RR_FIXED.unpack_from(data, offset)
    start = offset + RR_FIXED.size
    end = start + rdlength
    if end > len(data):
        raise WireError(f"record data runs past the end of the message (byte {start})")
    rdata = data[start:end]
    if rtype == A and rdlength == 4:
        value: object = socket.inet_ntop(socket.AF_INET, rdata)
    elif rtype == AAAA and rdlength == 16:
        value = socket.inet_ntop(socket.AF_INET6, rdata)
    elif rtype in (A, AAAA):
        raise WireError(f"address record of {rdlength} bytes at byte {start}")
    elif rtype in (CNAME, PTR, NS):
        value, name_end = read_name(data, start)   # may point anywhere before it
        if name_end != end:
            raise WireError(f"name in record data does not fill it (byte {start})")
    else:
        value = rdata
    return Record(name, rtype, rclass, ttl, value), end


def parse(data: bytes) -> Message:
    """Every section of a message; WireError when any part is malformed or bytes are left over."""
    if len(data) < HEADER.size:
        raise WireError(f"message of {len(data)} bytes is shorter than a header")
    qid, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    msg = Message(qid, flags)
    offset = HEADER.size
    for _ in range(qdcount):
        question, offset = _read_question(data, offset)
        msg.questions.append(question)
    msg.question_end = offset
    for section, count in ((msg.answers, ancount), (msg.authorities, nscount),
                           (msg.additionals, arcount)):
        for _ in range(count):
            record, offset = _read_record(data, offset)
            section.append(record)
    if offset != len(data):
        raise WireError(f"{len(data) - offset} bytes after the last record")
    return msg


def header(data: bytes) -> tuple[int, int, int, int, int, int]:
    """(id, flags, qdcount, ancount, nscount, arcount); WireError when shorter than a header."""
    if len(data) < HEADER.size:
        raise WireError(f"message of {len(data)} bytes is shorter than a header")
    return HEADER.unpack_from(data)


def query(name: str, qtype: int = A, qid: int = 0, rd: bool = True,
          edns_size: int | None = None) -> bytes:
    """A standard query for one name (with an OPT record announcing edns_size when given)."""
    out = HEADER.pack(qid, RD if rd else 0, 1, 0, 0, 1 if edns_size else 0)
    out += encode_name(name) + struct.pack("!HH", qtype, IN)
    if edns_size:
        out += _opt(edns_size)
    return out


def _opt(size: int) -> bytes:
    return b"\x00" + RR_FIXED.pack(OPT, size, 0, 0)


def record(rtype: int, ttl: int, rdata: bytes, owner: bytes = b"\xc0\x0c") -> bytes:
    """A resource record; owner defaults to a pointer to the question's name (byte 12)."""
    return owner + RR_FIXED.pack(rtype, IN, ttl, len(rdata)) + rdata


def reply(data: bytes, msg: Message, rcode: int = NOERROR, answers: list[bytes] = (),
          limit: int = MAX_UDP, authoritative: bool = True) -> bytes:
    """The answer to the query msg parsed from data: its question copied byte for byte (a client
    that randomises the case of its names checks it comes back as sent), then as many whole
    answers as fit in limit; TC set when some did not. An OPT record goes back when the query
    had one."""
    flags = QR | RA | (msg.flags & (OPCODE_MASK | RD | CD)) | (rcode & RCODE_MASK)
    if authoritative:
        flags |= AA
    question = data[HEADER.size:msg.question_end]
    opt = _opt(OUR_EDNS_SIZE) if msg.edns_size() is not None else b""
    room = limit - HEADER.size - len(question) - len(opt)
    body, count = bytearray(), 0
    for answer in answers:
        if len(body) + len(answer) > room:
            flags |= TC
            break
        body += answer
        count += 1
    head = HEADER.pack(msg.id, flags, len(msg.questions), count, 0, 1 if opt else 0)
    return head + question + bytes(body) + opt


def error(data: bytes, rcode: int) -> bytes:
    """A bare answer (no sections) carrying rcode to a query whose header is all that could be
    read: its id and opcode come back so the client can match it."""
    qid, flags = struct.unpack_from("!HH", data)
    return HEADER.pack(qid, QR | RA | (flags & (OPCODE_MASK | RD)) | rcode, 0, 0, 0, 0)


def address_records(addresses, qtype: int, ttl: int) -> list[bytes]:
    """A records of the IPv4 addresses and AAAA of the IPv6 ones that qtype asks for (ANY: all)."""
    records = []
    for address in addresses:
        rtype, family = (AAAA, socket.AF_INET6) if ":" in address else (A, socket.AF_INET)
        if qtype in (rtype, ANY):
            records.append(record(rtype, ttl, socket.inet_pton(family, address)))
    return records


def reverse_address(name: str) -> str | None:
    """The IPv4 address a PTR name d.c.b.a.in-addr.arpa stands for (lower case), else None."""
    if not name.endswith(".in-addr.arpa"):
        return None
    octets = name[:-len(".in-addr.arpa")].split(".")
    if len(octets) != 4 or not all(o.isdigit() and len(o) <= 3 and int(o) < 256 for o in octets):
        return None
    return ".".join(reversed(octets))


def frames(buffer: bytearray) -> list[bytes]:
    """The whole length-prefixed messages of a TCP stream (RFC 1035 4.2.2) at the front of
    buffer, removed from it; a partial one stays."""
    out = []
    while len(buffer) >= 2:
        size = (buffer[0] << 8) | buffer[1]
        if len(buffer) < 2 + size:
            break
        out.append(bytes(buffer[2:2 + size]))
        del buffer[:2 + size]
    return out


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message
