"""shim/wire.py (the shim's own protobuf codec) against the protoc-generated modules of
shim/proto/ (upb): every message of protos/ with every field set, both directions, byte for byte
where protobuf's output is deterministic (no maps)."""
from __future__ import annotations

import importlib
import pkgutil

import pytest

import shim_harness  # noqa: F401  (puts the repository first on sys.path)
from google.protobuf import descriptor_pool, message_factory

import shim.proto
from shim import wire
from shim.proto.schema import MESSAGES

# import every generated module so that their files are in the default pool
for mod in pkgutil.walk_packages(shim.proto.__path__, "shim.proto."):
    if mod.name.endswith("_pb2"):
        importlib.import_module(mod.name)


def pb_class(name: str):
    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(name))


SAMPLES = {wire.STRING: "s-\u00e9", wire.BYTES: b"\x00\xffb", wire.BOOL: True,
           wire.UINT32: 4000000000,
           wire.UINT64: 2 ** 63 + 5, wire.INT64: -5, wire.INT32: -7, wire.ENUM: 2,
           wire.DOUBLE: 1.5, wire.FLOAT: 0.25}


def sample(name: str, depth: int = 0):
    cls = wire.message(name)
    msg = cls()
    for f in cls.FIELDS:
        if f.kind == wire.MESSAGE:
            if depth > 2:
                continue
            one = lambda: sample(f.type_name, depth + 1)   # noqa: E731
        else:
            one = lambda: SAMPLES[f.kind]   # noqa: E731
        if f.mode == wire.SINGULAR:
            setattr(msg, f.name, one())
        elif f.mode == wire.REPEATED:
            setattr(msg, f.name, [one(), one()])
        else:
            setattr(msg, f.name, {"k1": one(), "k2": one()})
    return msg


def as_dict(msg) -> dict:
    """A wire message as plain data (defaults dropped, as protobuf drops them)."""
    out = {}
    for f in msg.FIELDS:
        v = getattr(msg, f.name)
        if f.kind == wire.MESSAGE:
            conv = as_dict
        else:
            conv = lambda x: x   # noqa: E731
        if f.mode == wire.REPEATED:
            v = [conv(x) for x in v]
        elif f.mode == wire.MAP:
            v = {k: conv(x) for k, x in v.items()}
        elif v is not None:
            v = conv(v)
        if v not in (None, [], {}, 0, "", b"", False) or (f.kind == wire.MESSAGE and v == {}):
            out[f.name] = v
    return out


def pb_dict(pb) -> dict:
    out = {}
    for fd, v in pb.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            conv = pb_dict if value_fd.message_type is not None else (lambda x: x)
            out[fd.name] = {k: conv(x) for k, x in v.items()}
        elif fd.message_type is not None:
            out[fd.name] = [pb_dict(x) for x in v] if fd.is_repeated else pb_dict(v)
        else:
            out[fd.name] = list(v) if fd.is_repeated else v
    return out


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_wire_matches_protobuf(name):
    msg = sample(name)
    data = msg.encode()
    pb = pb_class(name).FromString(data)
    assert pb_dict(pb) == as_dict(msg)
    back = wire.message(name).decode(pb.SerializeToString())
    assert back == msg
    has_map = any(f.mode == wire.MAP for f in msg.FIELDS)
    if not has_map and name != "io.containerd.cgroups.v1.Metrics":
        assert pb.SerializeToString(deterministic=True) == data


def test_defaults_are_not_written_and_unknown_fields_skipped():
    task = wire.package("containerd.task.v2")
    assert task.StateResponse().encode() == b""
    assert task.StateResponse(exited_at=wire.timestamp(0)).encode() == b"R\x00"
    # a newer peer's field 99 (varint and bytes) is skipped
    data = task.StartResponse(pid=9).encode() + b"\x98\x06\x01" + b"\x9a\x06\x02hi"
    assert task.StartResponse.decode(data).pid == 9


def test_unpacked_repeated_numbers_are_read():
    usage = wire.message("io.containerd.cgroups.v1.CPUUsage")
    assert usage.decode(b"\x20\x01\x20\x02").per_cpu == [1, 2]
    assert usage.decode(usage(per_cpu=[3, 4]).encode()).per_cpu == [3, 4]


@pytest.mark.parametrize("data", [b"\x0a\x05ab", b"\x08", b"\x08\xff", b"\x0b", b"\x00\x01",
                                  b"\x08" + b"\xff" * 11])
def test_truncated_or_garbage_input_raises(data):
    with pytest.raises(wire.DecodeError):
        wire.message("containerd.task.v2.StateRequest").decode(data)


def test_any_and_timestamp():
    events = wire.package("containerd.events")
    any_msg = wire.pack_any(events.TaskExit(container_id="c", exit_status=3))
    assert any_msg.type_url == "containerd.events.TaskExit"
    assert wire.any_name(any_msg) == "containerd.events.TaskExit"
    assert events.TaskExit.decode(any_msg.value).exit_status == 3
    ts = wire.timestamp(1_700_000_000_123_456_789)
    assert (ts.seconds, ts.nanos) == (1_700_000_000, 123_456_789)


@pytest.mark.parametrize("pid,status,ns", [(0, 137, 1_700_000_000_000_000_000),
                                           (4242, 137, 1_700_000_000_123_456_789), (5, 0, 7)])
def test_delete_command_response_matches_the_codec(pid, status, ns):
    """`delete` encodes its DeleteResponse by hand (it runs after every container)."""
    from shim.cleanup import delete_response
    msg = wire.message("containerd.task.v2.DeleteResponse")(pid=pid, exit_status=status,
                                                            exited_at=wire.timestamp(ns))
    assert delete_response(pid, status, ns) == msg.encode()
    assert pb_class("containerd.task.v2.DeleteResponse").FromString(
        delete_response(pid, status, ns)).exited_at.nanos == ns % 10 ** 9
