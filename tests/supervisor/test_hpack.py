"""supervisor/client/hpack.py with the examples of RFC 7541 Appendix C, and supervisor/client/h2.py's framing
against a peer scripted on a socketpair (what grpcio's server does not send on demand:
CONTINUATION, padding, PING, GOAWAY, a closed send window)."""
from __future__ import annotations

import socket
import threading

import pytest

import hawserd_harness  # noqa: F401  (puts the repository first on sys.path)
from supervisor.client import h2, hpack


def dehex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


@pytest.mark.parametrize("value,prefix,first,want", [
    (10, 5, 0, "0a"),          # C.1.1
    (1337, 5, 0, "1f9a0a"),    # C.1.2
    (42, 8, 0, "2a"),          # C.1.3
])
def test_integer_representation(value, prefix, first, want):
    data = hpack.encode_int(value, prefix, first)
    assert data == dehex(want)
    assert hpack._int(data, 0, prefix) == (value, len(data))


@pytest.mark.parametrize("block,headers,table", [
    ("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",     # C.2.1
     [("custom-key", "custom-header")], [("custom-key", "custom-header")]),
    ("040c 2f73 616d 706c 652f 7061 7468", [(":path", "/sample/path")], []),  # C.2.2
    ("1008 7061 7373 776f 7264 0673 6563 7265 74", [("password", "secret")], []),  # C.2.3
    ("82", [(":method", "GET")], []),                                          # C.2.4
])
def test_header_field_representations(block, headers, table):
    d = hpack.Decoder()
    assert d.decode(dehex(block)) == headers
    assert d.table == table


REQUESTS = [
    ([(":method", "GET"), (":scheme", "http"), (":path", "/"),
      (":authority", "www.example.com")],
     [(":authority", "www.example.com")], 57),
    ([(":method", "GET"), (":scheme", "http"), (":path", "/"),
      (":authority", "www.example.com"), ("cache-control", "no-cache")],
     [("cache-control", "no-cache"), (":authority", "www.example.com")], 110),
    ([(":method", "GET"), (":scheme", "https"), (":path", "/index.html"),
      (":authority", "www.example.com"), ("custom-key", "custom-value")],
     [("custom-key", "custom-value"), ("cache-control", "no-cache"),
      (":authority", "www.example.com")], 164),
]
C3 = ["8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"]
C4 = ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"]

DATE1, DATE2 = "Mon, 21 Oct 2013 20:13:21 GMT", "Mon, 21 Oct 2013 20:13:22 GMT"
LOC, COOKIE = "https://www.example.com", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
RESPONSES = [
    ([(":status", "302"), ("cache-control", "private"), ("date", DATE1), ("location", LOC)],
     [("location", LOC), ("date", DATE1), ("cache-control", "private"), (":status", "302")],
     222),
    ([(":status", "307"), ("cache-control", "private"), ("date", DATE1), ("location", LOC)],
     [(":status", "307"), ("location", LOC), ("date", DATE1), ("cache-control", "private")],
     222),
    ([(":status", "200"), ("cache-control", "private"), ("date", DATE2), ("location", LOC),
      ("content-encoding", "gzip"), ("set-cookie", COOKIE)],
     [("set-cookie", COOKIE), ("content-encoding", "gzip"), ("date", DATE2)], 215),
]
C5 = ["""4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d""",
      "4803 3330 37c1 c0bf",
      """88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31"""]
C6 = ["""4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3""",
      "4883 640e ffc1 c0bf",
      """88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07"""]


@pytest.mark.parametrize("blocks,steps,table_size", [
    (C3, REQUESTS, 4096), (C4, REQUESTS, 4096),     # C.3, C.4 (Huffman)
    (C5, RESPONSES, 256), (C6, RESPONSES, 256),     # C.5, C.6 (Huffman): evictions
], ids=["C.3", "C.4", "C.5", "C.6"])
def test_rfc7541_examples_share_one_dynamic_table(blocks, steps, table_size):
    d = hpack.Decoder(table_size)
    for block, (headers, table, size) in zip(blocks, steps):
        assert d.decode(dehex(block)) == headers
        assert (d.table, d.size) == (table, size)


@pytest.mark.parametrize("text,coded", [
    ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"), ("no-cache", "a8eb 1064 9cbf"),
    ("custom-key", "25a8 49e9 5ba9 7d7f"), ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
    ("302", "6402"), ("private", "aec3 771a 4b"), ("gzip", "9bd9 ab"),
])
def test_huffman_code_of_the_examples(text, coded):
    assert hpack.huffman_encode(text.encode()) == dehex(coded)
    assert hpack.huffman_decode(dehex(coded)) == text.encode()


def test_huffman_every_symbol_both_ways():
    data = bytes(range(256)) * 2
    assert hpack.huffman_decode(hpack.huffman_encode(data)) == data
    codes = hpack.huffman_codes()[0]
    assert (codes[ord("0")], codes[ord("a")], codes[256]) == (0, 3, (1 << 30) - 1)


@pytest.mark.parametrize("data", [b"\xff",                      # padding of 8 bits
                                  b"\x1f\xff",                  # 'a' then a byte of padding
                                  b"\x00",                      # '0', then padding of zeros
                                  b"\xff\xff\xff\xff\xfc"])     # EOS inside the string
def test_bad_huffman_strings_are_refused(data):
    with pytest.raises(hpack.HpackError):
        hpack.huffman_decode(data)


def test_dynamic_table_size_updates():
    d = hpack.Decoder(4096)
    d.decode(dehex(C3[0]) + dehex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 "
                                  "6572"))
    assert len(d.table) == 2
    assert d.decode(b"\x20") == [] and (d.table, d.size) == ([], 0)     # size 0 empties it
    assert d.decode(dehex("3fe1 1f")) == [] and d.size_limit == 4096     # back to 4096
    with pytest.raises(hpack.HpackError):
        d.decode(dehex("3fe2 1f"))                                       # 4097: over our max
    with pytest.raises(hpack.HpackError):
        d.decode(b"\xbe")                                                # index 62: no entry


def test_encoder_blocks_decode_back():
    headers = [(":method", "POST"), (":scheme", "http"), (":path", "/hawser.v1.Tasks/Wait"),
               (":authority", "localhost"), ("te", "trailers"),
               ("content-type", "application/grpc"), ("x-long", "v" * 300)]
    block = hpack.encode(headers)
    assert block[:2] == b"\x83\x86"       # static entries are indexed
    d = hpack.Decoder()
    assert d.decode(block) == headers and d.table == []


# -- h2 framing against a scripted peer

class Peer:
    """The server end of a socketpair: reads the client's frames, writes frames of its own."""

    def __init__(self):
        self.sock, client = socket.socketpair()
        self.conn = h2.Connection(client)
        assert self.read_exact(len(h2.PREFACE)) == h2.PREFACE
        self.frames: list = []

    def read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "client closed"
            data += chunk
        return data

    def read_frame(self):
        head = self.read_exact(9)
        n = int.from_bytes(head[:3], "big")
        return head[3], head[4], int.from_bytes(head[5:9], "big"), self.read_exact(n)

    def expect(self, ftype: int):
        while True:
            f = self.read_frame()
            if f[0] == ftype:
                return f
            self.frames.append(f)

    def send(self, ftype, flags, sid, payload=b""):
        self.sock.sendall(h2.frame(ftype, flags, sid, payload))

    def close(self):
        self.conn.close()
        self.sock.close()


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


def test_settings_ack_ping_continuation_and_padding(peer):
    settings = peer.expect(h2.SETTINGS)
    assert settings[1] == 0 and h2.STREAM_WINDOW.to_bytes(4, "big") in settings[3]
    peer.send(h2.SETTINGS, 0, 0)
    assert peer.expect(h2.SETTINGS)[1] == h2.ACK
    peer.send(h2.PING, 0, 0, b"12345678")
    assert peer.expect(h2.PING)[1:] == (h2.ACK, 0, b"12345678")

    st = peer.conn.open_stream([(":path", "/x")], b"req", end_stream=True)
    assert peer.expect(h2.HEADERS)[1:3] == (h2.END_HEADERS, 1)
    assert peer.expect(h2.DATA)[1:] == (h2.END_STREAM, 1, b"req")
    block = hpack.encode([(":status", "200"), ("content-type", "application/grpc")])
    # padded HEADERS with a priority, its block split over a CONTINUATION
    peer.send(h2.HEADERS, h2.PADDED | h2.PRIORITY_FLAG, 1,
              b"\x03" + bytes(5) + block[:4] + b"pad")
    peer.send(h2.CONTINUATION, h2.END_HEADERS, 1, block[4:])
    peer.send(h2.DATA, h2.PADDED, 1, b"\x02" + b"body" + b"\x00\x00")
    peer.send(h2.HEADERS, h2.END_HEADERS | h2.END_STREAM, 1,
              hpack.encode([("grpc-status", "0")]))
    assert st.next_event(5) == ("headers", [(":status", "200"),
                                            ("content-type", "application/grpc")], False)
    assert st.next_event(5) == ("data", b"body", 7, False)
    assert st.next_event(5) == ("headers", [("grpc-status", "0")], True)
    assert 1 not in peer.conn.streams


def test_send_waits_for_the_peers_window(peer):
    peer.expect(h2.SETTINGS)
    peer.send(h2.SETTINGS, 0, 0, (4).to_bytes(2, "big") + (10).to_bytes(4, "big"))   # window 10
    peer.expect(h2.SETTINGS)
    st = peer.conn.open_stream([(":path", "/x")])
    peer.expect(h2.HEADERS)
    done = threading.Event()
    threading.Thread(target=lambda: (peer.conn.send_data(st, b"a" * 25, True), done.set()),
                     daemon=True).start()
    assert peer.expect(h2.DATA)[3] == b"a" * 10
    assert not done.wait(0.3)           # blocked: the stream's window is spent
    peer.send(h2.WINDOW_UPDATE, 0, 1, (100).to_bytes(4, "big"))
    assert peer.expect(h2.DATA)[1:] == (h2.END_STREAM, 1, b"a" * 15)
    assert done.wait(5)


def test_consumed_data_goes_back_to_the_windows(peer, monkeypatch):
    monkeypatch.setattr(h2, "STREAM_WINDOW", 100)
    monkeypatch.setattr(h2, "CONN_WINDOW", 200)
    peer.expect(h2.SETTINGS)
    st = peer.conn.open_stream([(":path", "/x")], b"", end_stream=True)
    peer.expect(h2.HEADERS)
    peer.send(h2.DATA, 0, 1, b"x" * 120)
    ev = st.next_event(5)
    update = peer.expect(h2.WINDOW_UPDATE)     # the connection's, as soon as it arrived
    assert update[2:] == (0, (120).to_bytes(4, "big"))
    peer.conn.consumed(st, ev[2])              # the stream's, once its reader took it
    assert peer.expect(h2.WINDOW_UPDATE)[2:] == (1, (120).to_bytes(4, "big"))


def test_goaway_and_eof_end_the_streams(peer):
    peer.expect(h2.SETTINGS)
    a = peer.conn.open_stream([(":path", "/a")])
    b = peer.conn.open_stream([(":path", "/b")])
    peer.send(h2.GOAWAY, 0, 0, (1).to_bytes(4, "big") + bytes(4) + b"bye")
    assert b.next_event(5) == ("closed", "GOAWAY received (error code 0: bye)")
    with pytest.raises(h2.Closed):
        peer.conn.open_stream([(":path", "/c")])
    peer.send(h2.RST_STREAM, 0, 1, (8).to_bytes(4, "big"))
    assert a.next_event(5) == ("reset", 8)
    peer.sock.close()
    peer.sock = socket.socket()     # for close()
