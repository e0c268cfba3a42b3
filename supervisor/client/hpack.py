"""HPACK (RFC 7541), the header compression of HTTP/2, for hawserctl's gRPC client (grpclite).

The encoder never adds to the peer's dynamic table: every field is an index into the static table
or a literal without indexing, so it keeps no state and ignores the peer's table size. The decoder
does what a peer may send: the static table, a dynamic table with size updates, and Huffman-coded
strings (grpc's C core codes most of its header values that way). Names and values are str, their
octets as latin-1 (HTTP field values are octets; grpc's are ASCII).
"""


class HpackError(ValueError):
    """A header block this decoder cannot read: a COMPRESSION_ERROR of the connection."""


# RFC 7541 Appendix A
STATIC = (
    None, (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""),
    ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
    ("strict-transport-security", ""), ("transfer-encoding", ""), ("user-agent", ""),
    ("vary", ""), ("via", ""), ("www-authenticate", ""),
)
_STATIC_PAIR = {pair: i for i, pair in enumerate(STATIC) if pair}
_STATIC_NAME = {}
for _i in range(len(STATIC) - 1, 0, -1):
    _STATIC_NAME[STATIC[_i][0]] = _i

# RFC 7541 Appendix B: the code length in bits of symbols 0..255 and EOS (256). The code is
# canonical (codes of one length are consecutive, in symbol order, after the shorter ones), so
# the lengths determine the codes, e.g. '0' = 00000, '1' = 00001, EOS = 30 ones.
HUFFMAN_LENGTHS = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,     # 0-15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,     # 16-31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,             # ' ' - '/'
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,                  # '0' - '?'
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,                    # '@' - 'O'
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,                 # 'P' - '_'
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,                    # '`' - 'o'
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,                # 'p' - 127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,     # 128-143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,     # 144-159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,     # 160-175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,     # 176-191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,     # 192-207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,     # 208-223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,     # 224-239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,     # 240-255
    30,                                                                 # EOS
)
EOS = 256
_canonical = None


def huffman_codes() -> tuple[list[int], dict[int, int], dict[int, int], list[int]]:
    """(code of each symbol, first code of each length, index in `order` of that first code,
    symbols in code order); made on first use (most responses need no Huffman string)."""
    global _canonical
    if _canonical is None:
        order = sorted(range(257), key=lambda s: (HUFFMAN_LENGTHS[s], s))
        codes, first, offset = [0] * 257, {}, {}
        code, length = -1, HUFFMAN_LENGTHS[order[0]]
        for i, sym in enumerate(order):
            code = (code + 1) << (HUFFMAN_LENGTHS[sym] - length)
            length = HUFFMAN_LENGTHS[sym]
            if length not in first:
                first[length], offset[length] = code, i
            codes[sym] = code
        _canonical = codes, first, offset, order
    return _canonical


def huffman_decode(data: bytes) -> bytes:
    _, first, offset, order = huffman_codes()
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = code << 1 | (byte >> shift) & 1
            length += 1
            start = first.get(length)
            if start is not None and code >= start:
                i = offset[length] + code - start
                if i < len(order) and HUFFMAN_LENGTHS[order[i]] == length:
                    sym = order[i]
                    if sym == EOS:
                        raise HpackError("Huffman string contains EOS")
                    out.append(sym)
                    code = length = 0
            if length > 30:
                raise HpackError("invalid Huffman code")
    # what is left must be padding: fewer than 8 bits, all ones (a prefix of EOS)
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("invalid Huffman padding")
    return bytes(out)


def huffman_encode(data: bytes) -> bytes:
    codes = huffman_codes()[0]
    acc = bits = 0
    for sym in data:
        acc, bits = acc << HUFFMAN_LENGTHS[sym] | codes[sym], bits + HUFFMAN_LENGTHS[sym]
    pad = -bits % 8
    return ((acc << pad | (1 << pad) - 1).to_bytes((bits + pad) // 8, "big")) if bits else b""


def encode_int(value: int, prefix_bits: int, first: int) -> bytes:
    """An integer with an N-bit prefix (RFC 7541 5.1); `first` holds the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out, value = bytearray((first | limit,)), value - limit
    while value >= 128:
        out.append(value & 127 | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode("latin-1")
    return encode_int(len(raw), 7, 0) + raw


def encode(headers) -> bytes:
    """A header block for (name, value) pairs: static indexes, else literals without indexing."""
    out = bytearray()
    for name, value in headers:
        i = _STATIC_PAIR.get((name, value))
        if i is not None:
            out += encode_int(i, 7, 0x80)
            continue
        i = _STATIC_NAME.get(name)
        if i is not None:
            out += encode_int(i, 4, 0)
        else:
            out += b"\x00" + _string(name)
        out += _string(value)
    return bytes(out)


class Decoder:
    """Decodes the header blocks of one connection, in order (they share the dynamic table)."""

    def __init__(self, max_size: int = 4096):
        self.max_size = max_size    # our SETTINGS_HEADER_TABLE_SIZE: the most the peer may use
        self.size_limit = max_size  # the peer's current choice (dynamic table size update)
        self.table: list[tuple[str, str]] = []   # newest first
        self.size = 0

    def _add(self, name: str, value: str) -> None:
        self.table.insert(0, (name, value))
        self.size += len(name) + len(value) + 32
        self._evict()

    def _evict(self) -> None:
        while self.size > self.size_limit:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + 32

    def _entry(self, index: int) -> tuple[str, str]:
        if 0 < index < len(STATIC):
            return STATIC[index]
        try:
            if index <= 0:
                raise IndexError
            return self.table[index - len(STATIC)]
        except IndexError:
            raise HpackError(f"header index {index} out of range") from None

    def decode(self, block: bytes) -> list[tuple[str, str]]:
        headers, pos, end = [], 0, len(block)
        while pos < end:
            b = block[pos]
            if b & 0x80:                               # indexed field
                index, pos = _int(block, pos, 7)
                headers.append(self._entry(index))
            elif b & 0xE0 == 0x20:                     # dynamic table size update
                size, pos = _int(block, pos, 5)
                if size > self.max_size:
                    raise HpackError(f"table size {size} over the {self.max_size} allowed")
                self.size_limit = size
                self._evict()
            else:               # literal: with incremental indexing (01), without or never (000)
                indexing = b & 0xC0 == 0x40
                index, pos = _int(block, pos, 6 if indexing else 4)
                if index:
                    name = self._entry(index)[0]
                else:
                    name, pos = _str(block, pos)
                value, pos = _str(block, pos)
                headers.append((name, value))
                if indexing:
                    self._add(name, value)
        return headers


def _int(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    limit = (1 << prefix_bits) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise HpackError("truncated or oversized integer")
        b = data[pos]
        pos += 1
        value += (b & 127) << shift
        shift += 7
        if not b & 128:
            return value, pos


def _str(data: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(data):
        raise HpackError("truncated header block")
    huffman = data[pos] & 0x80
    n, pos = _int(data, pos, 7)
    if pos + n > len(data):
        raise HpackError("truncated string")
    raw = data[pos:pos + n]
    return (huffman_decode(raw) if huffman else raw).decode("latin-1"), pos + n
