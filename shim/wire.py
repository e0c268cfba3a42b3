"""The protobuf wire format for the shim's messages, on the layouts generated from protos/
(shim/proto/schema.py).

Why not the protobuf package: a shim process lives as long as its container, one per container,
and importing protobuf (upb) with its descriptor machinery costs 4-6 MiB of resident memory and
~25 ms of start-up; the whole shim has a 15 MiB budget. This codec is proto3 as containerd's
gogo/protobuf speaks it: scalars at their default are not written, repeated numbers are packed
(both forms are read), maps are repeated key/value entries, unknown fields are skipped.
tests/shim/test_wire.py checks it against the protoc-generated modules in shim/proto/.

    task = wire.package("containerd.task.v2")
    data = task.StateResponse(id="c1", pid=42).encode()
    msg = task.StateResponse.decode(data)

The layouts of another generated schema module (hawserctl's supervisor/api/schema.py) get classes
of their own from a Registry: wire.Registry("supervisor.api.schema").package("hawser.v1").
"""
import struct

# FieldDescriptorProto type numbers
DOUBLE, FLOAT, INT64, UINT64, INT32, FIXED64, FIXED32, BOOL, STRING = 1, 2, 3, 4, 5, 6, 7, 8, 9
MESSAGE, BYTES, UINT32, ENUM, SFIXED32, SFIXED64, SINT32, SINT64 = 11, 12, 13, 14, 15, 16, 17, 18
_VARINT = {INT64, UINT64, INT32, BOOL, UINT32, ENUM, SINT32, SINT64}
_FIXED = {DOUBLE: "<d", FLOAT: "<f", FIXED64: "<Q", FIXED32: "<I", SFIXED32: "<i",
          SFIXED64: "<q"}
_SIGNED = {INT64, INT32, ENUM}
_MASK64 = (1 << 64) - 1
SINGULAR, REPEATED, MAP = 0, 1, 2


class DecodeError(ValueError):
    pass


def _wire_type(kind: int) -> int:
    if kind in _VARINT:
        return 0
    if kind in _FIXED:
        return 1 if struct.calcsize(_FIXED[kind]) == 8 else 5
    return 2


def _default(kind: int):
    if kind == STRING:
        return ""
    if kind == BYTES:
        return b""
    if kind == BOOL:
        return False
    if kind == MESSAGE:
        return None
    if kind in (DOUBLE, FLOAT):
        return 0.0
    return 0


def _put_varint(out: bytearray, v: int) -> None:
    v &= _MASK64
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _get_varint(data, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        try:
            b = data[pos]
        except IndexError:
            raise DecodeError("truncated varint") from None
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def _varint_value(kind: int, v: int):
    if kind == BOOL:
        return v != 0
    if kind in (SINT32, SINT64):
        return (v >> 1) ^ -(v & 1)
    if kind == UINT32:
        return v & 0xFFFFFFFF
    if kind in _SIGNED:
        if kind != INT64:
            v &= 0xFFFFFFFF
            return v - (1 << 32) if v >> 31 else v
        return v - (1 << 64) if v >> 63 else v
    return v


def _varint_raw(kind: int, v) -> int:
    if kind in (SINT32, SINT64):
        return (v << 1) ^ (v >> 63)
    return int(v)


class Field:
    __slots__ = ("name", "number", "kind", "mode", "type_name", "key_kind", "wt")

    def __init__(self, name, number, kind, type_name):
        self.name, self.number, self.type_name = name, number, type_name
        self.key_kind = None
        if isinstance(kind, str):
            parts = kind.split(":")
            if parts[0] == "map":
                self.mode, self.key_kind, self.kind = MAP, int(parts[1]), int(parts[2])
            else:
                self.mode, self.kind = REPEATED, int(parts[1])
        else:
            self.mode, self.kind = SINGULAR, kind
        self.wt = _wire_type(self.kind)

    def default(self):
        return [] if self.mode == REPEATED else {} if self.mode == MAP else _default(self.kind)


class Message:
    """Base of the generated message classes: attributes named as the fields, proto3 defaults."""
    __slots__ = ()
    NAME = ""
    FIELDS: tuple = ()
    BY_NUMBER: dict = {}
    REGISTRY: "Registry"    # where the classes of its message fields come from

    def __init__(self, **values):
        for f in self.FIELDS:
            setattr(self, f.name, f.default())
        for name, value in values.items():
            setattr(self, name, value)

    def __eq__(self, other):
        return type(other) is type(self) and all(
            getattr(self, f.name) == getattr(other, f.name) for f in self.FIELDS)

    def __repr__(self):
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.FIELDS
                          if getattr(self, f.name) != f.default())
        return f"{self.NAME}({shown})"

    def encode(self) -> bytes:
        out = bytearray()
        self._encode(out)
        return bytes(out)

    def _encode(self, out: bytearray) -> None:
        for f in self.FIELDS:
            value = getattr(self, f.name)
            if f.mode == SINGULAR:
                if f.kind == MESSAGE:
                    if value is not None:
                        _put_varint(out, f.number << 3 | 2)
                        _put_len(out, value.encode())
                elif value:    # proto3: a scalar at its default is not written
                    _put_varint(out, f.number << 3 | f.wt)
                    _put_scalar(out, f.kind, value)
            elif f.mode == REPEATED:
                if not value:
                    continue
                if f.wt != 2:    # packed
                    packed = bytearray()
                    for v in value:
                        _put_scalar(packed, f.kind, v)
                    _put_varint(out, f.number << 3 | 2)
                    _put_len(out, packed)
                else:
                    for v in value:
                        _put_varint(out, f.number << 3 | 2)
                        if f.kind == MESSAGE:
                            _put_len(out, v.encode())
                        else:
                            _put_scalar(out, f.kind, v)
            else:
                for k, v in value.items():
                    entry = bytearray()
                    _put_varint(entry, 1 << 3 | _wire_type(f.key_kind))
                    _put_scalar(entry, f.key_kind, k)
                    _put_varint(entry, 2 << 3 | f.wt)
                    if f.kind == MESSAGE:
                        _put_len(entry, v.encode())
                    else:
                        _put_scalar(entry, f.kind, v)
                    _put_varint(out, f.number << 3 | 2)
                    _put_len(out, entry)

    @classmethod
    def decode(cls, data) -> "Message":
        msg = cls()
        data = bytes(data)
        pos, end = 0, len(data)
        while pos < end:
            tag, pos = _get_varint(data, pos)
            number, wt = tag >> 3, tag & 7
            if number == 0:
                raise DecodeError(f"{cls.NAME}: field number 0")
            if wt == 0:
                raw, pos = _get_varint(data, pos)
            elif wt == 2:
                n, pos = _get_varint(data, pos)
                if pos + n > end:
                    raise DecodeError(f"{cls.NAME}: truncated field {number}")
                raw, pos = data[pos:pos + n], pos + n
            elif wt in (1, 5):
                n = 8 if wt == 1 else 4
                if pos + n > end:
                    raise DecodeError(f"{cls.NAME}: truncated field {number}")
                raw, pos = data[pos:pos + n], pos + n
            else:
                raise DecodeError(f"{cls.NAME}: unsupported wire type {wt}")
            f = cls.BY_NUMBER.get(number)
            if f is not None:
                msg._set(f, wt, raw)
        return msg

    def _set(self, f: Field, wt: int, raw) -> None:
        if f.mode == MAP:
            if wt != 2:
                raise DecodeError(f"{self.NAME}.{f.name}: map entry is not length-delimited")
            key, value = _default(f.key_kind), _default(f.kind)
            pos = 0
            while pos < len(raw):
                tag, pos = _get_varint(raw, pos)
                sub_wt = tag & 7
                if sub_wt == 0:
                    v, pos = _get_varint(raw, pos)
                elif sub_wt == 2:
                    n, pos = _get_varint(raw, pos)
                    v, pos = raw[pos:pos + n], pos + n
                elif sub_wt in (1, 5):
                    n = 8 if sub_wt == 1 else 4
                    v, pos = raw[pos:pos + n], pos + n
                else:
                    raise DecodeError(f"{self.NAME}.{f.name}: bad map entry")
                if tag >> 3 == 1:
                    key = _scalar(f.key_kind, sub_wt, v, f)
                elif tag >> 3 == 2:
                    value = (self.REGISTRY.message(f.type_name).decode(v) if f.kind == MESSAGE
                             else _scalar(f.kind, sub_wt, v, f))
            getattr(self, f.name)[key] = value
            return
        if f.mode == REPEATED and wt == 2 and f.wt != 2:    # packed numbers
            items, pos = getattr(self, f.name), 0
            while pos < len(raw):
                if f.wt == 0:
                    v, pos = _get_varint(raw, pos)
                    items.append(_varint_value(f.kind, v))
                else:
                    n = 8 if f.wt == 1 else 4
                    if pos + n > len(raw):
                        raise DecodeError(f"{self.NAME}.{f.name}: truncated packed field")
                    items.append(struct.unpack(_FIXED[f.kind], raw[pos:pos + n])[0])
                    pos += n
            return
        if wt != f.wt:
            raise DecodeError(f"{self.NAME}.{f.name}: wire type {wt}, expected {f.wt}")
        if f.kind == MESSAGE:
            value = self.REGISTRY.message(f.type_name).decode(raw)
        else:
            value = _scalar(f.kind, wt, raw, f)
        if f.mode == REPEATED:
            getattr(self, f.name).append(value)
        else:
            setattr(self, f.name, value)


def _put_len(out: bytearray, data) -> None:
    _put_varint(out, len(data))
    out += data


def _put_scalar(out: bytearray, kind: int, value) -> None:
    if kind in _VARINT:
        _put_varint(out, _varint_raw(kind, value))
    elif kind == STRING:
        _put_len(out, value.encode("utf-8", "surrogateescape"))
    elif kind == BYTES:
        _put_len(out, value)
    else:
        out += struct.pack(_FIXED[kind], value)


def _scalar(kind: int, wt: int, raw, f: Field):
    if kind in _VARINT:
        return _varint_value(kind, raw)
    if kind == STRING:
        return raw.decode("utf-8", "surrogateescape")
    if kind == BYTES:
        return raw
    if wt not in (1, 5):
        raise DecodeError(f"{f.name}: bad wire type {wt}")
    return struct.unpack(_FIXED[kind], raw)[0]


class Registry:
    """The message classes of one generated schema module (its MESSAGES), made on first use. The
    module is imported then too, so a program that never uses the shim's layouts never loads them.
    `bases` adds methods to some messages: {full name: a class with __slots__ = ()}."""

    def __init__(self, schema: str, bases: dict | None = None):
        self.schema, self.bases = schema, bases or {}
        self.layouts: dict | None = None
        self.classes: dict[str, type] = {}

    def message(self, full_name: str) -> type:
        """The class of a message of the schema (or a google.protobuf one it uses), by full name."""
        cls = self.classes.get(full_name)
        if cls is None:
            if self.layouts is None:
                self.layouts = __import__(self.schema, fromlist=("MESSAGES",)).MESSAGES
            try:
                layout = self.layouts[full_name]
            except KeyError:
                raise KeyError(f"unknown message type {full_name!r}") from None
            fields = tuple(Field(*spec) for spec in layout)
            bases = (self.bases[full_name], Message) if full_name in self.bases else (Message,)
            cls = type(full_name.rsplit(".", 1)[-1], bases, {
                "__slots__": tuple(f.name for f in fields), "NAME": full_name, "FIELDS": fields,
                "BY_NUMBER": {f.number: f for f in fields}, "REGISTRY": self})
            self.classes[full_name] = cls
        return cls

    def package(self, name: str) -> "package":
        return package(name, self)


# the shim's messages: protos/ but hawser/ (shim/proto/schema.py)
message = Registry("shim.proto.schema").message


class package:
    """The messages of one proto package as attributes: package("containerd.events").TaskExit."""

    def __init__(self, name: str, registry: Registry | None = None):
        self._name = name
        self._message = registry.message if registry is not None else message

    def __getattr__(self, attr: str) -> type:
        if attr.startswith("_"):
            raise AttributeError(attr)
        cls = self._message(f"{self._name}.{attr}")
        setattr(self, attr, cls)
        return cls


def pack_any(msg: Message, prefix: str = ""):
    """A google.protobuf.Any holding msg; containerd's type URLs are bare names
    ("containerd.events.TaskExit"), as its typeurl package writes them for proto messages."""
    return message("google.protobuf.Any")(type_url=prefix + msg.NAME, value=msg.encode())


def any_name(any_msg) -> str:
    """The message name of an Any's type URL ("types.example/a.b.C" -> "a.b.C")."""
    return any_msg.type_url.rsplit("/", 1)[-1] if any_msg is not None else ""


def timestamp(ns: int):
    return message("google.protobuf.Timestamp")(seconds=ns // 1_000_000_000,
                                                nanos=ns % 1_000_000_000)
