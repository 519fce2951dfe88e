"""Subjects, ids, the parsers' encodings and the decoder's refusals, without a broker."""

from __future__ import annotations

import hashlib
import json

import msgpack
import pytest

from socketioxide_nats_emitter import EncodeError, InvalidPrefixError, ProtocolError
from socketioxide_nats_emitter.errors import AckDecodeError, UnknownTypeError
from socketioxide_nats_emitter.parser import (
    collapse,
    decode_args,
    encode_data,
    encode_event,
    normalize_parser,
)
from socketioxide_nats_emitter.protocol import (
    BytesValue,
    PacketType,
    Subjects,
    TextValue,
    decode_request,
    decode_response,
    is_id,
    new_id,
    ns_token,
    validate_prefix,
)


def test_namespace_tokens_follow_protocol_section_2() -> None:
    assert ns_token("/") == "_2F"
    assert ns_token("/chat") == "_2Fchat"
    assert ns_token("/chat.v2") == "_2Fchat_2Ev2"
    assert ns_token("/*") == "_2F_2A"
    assert ns_token("/😀") == "_2F_F0_9F_98_80"
    assert ns_token("") == "_"
    assert ns_token("a_b") == "a_5Fb"
    long = "/" + "x" * 300
    assert ns_token(long) == "_h" + hashlib.sha256(long.encode()).hexdigest()
    assert ns_token("/" + "x" * 197) == "_2F" + "x" * 197, "200 bytes: kept"
    assert len(ns_token("/" + "x" * 198)) == 66, "201 bytes: hashed"


def test_subjects() -> None:
    s = Subjects("socket.io", "/")
    assert s.broadcast("E" * 16) == "socket.io._2F.b." + "E" * 16
    assert s.node("T" * 16, "E" * 16) == f"socket.io._2F.n.{'T' * 16}.{'E' * 16}"
    assert s.reply("R" * 16, "Q" * 16) == f"socket.io._2F.r.{'R' * 16}.{'Q' * 16}"
    assert s.reply_filter("R" * 16) == f"socket.io._2F.r.{'R' * 16}.*"


def test_ids_are_16_url_safe_characters() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(is_id(i) for i in ids)
    assert not is_id("short") and not is_id("x" * 15 + ".")


@pytest.mark.parametrize("prefix", ["socket.io", "my-app.prod", "a_b"])
def test_valid_prefixes(prefix: str) -> None:
    validate_prefix(prefix)


@pytest.mark.parametrize("prefix", ["", "app.*", "a..b", ".a", "a.", "a b", "é", "x" * 129, "a.>"])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidPrefixError):
        validate_prefix(prefix)


def test_parser_names() -> None:
    assert normalize_parser("default") == "default"
    assert normalize_parser("common") == "default"
    assert normalize_parser("msgpack") == "msgpack"
    with pytest.raises(ValueError):
        normalize_parser("json")


def test_the_common_parser_writes_compact_json_and_binary_placeholders() -> None:
    value, kind = encode_event("default", "hello", ["world"])
    assert kind == PacketType.EVENT
    assert value == TextValue('["hello","world"]', None)
    value, kind = encode_event("default", "é", [{"k": "日本語"}, 1.5, None, True])
    assert value.text == '["é",{"k":"日本語"},1.5,null,true]'
    value, kind = encode_event("default", "file", [b"\x01\x02\x03", {"a": [bytearray(b"\xff")]}])
    assert kind == PacketType.BINARY_EVENT
    assert value.text == (
        '["file",{"_placeholder":true,"num":0},{"a":[{"_placeholder":true,"num":1}]}]'
    )
    assert value.attachments == [b"\x01\x02\x03", b"\xff"]
    # PROTOCOL.md §9 broadcast-binary
    value, _ = encode_event("default", "file", [bytes([1, 2, 3])])
    assert value.text == '["file",{"_placeholder":true,"num":0}]'


def test_the_msgpack_parser_writes_one_array_with_bin() -> None:
    value, kind = encode_event("msgpack", "news", ["hi", 1])
    assert kind == PacketType.EVENT
    assert value == BytesValue(bytes.fromhex("93a46e657773a2686901"))  # vector broadcast-msgpack
    value, kind = encode_event("msgpack", "file", [b"\x01"])
    assert kind == PacketType.EVENT, "the msgpack parser has no binary packets"
    assert msgpack.unpackb(value.bytes) == ["file", b"\x01"]


def test_unencodable_arguments() -> None:
    with pytest.raises(EncodeError):
        encode_event("default", "x", [object()])
    with pytest.raises(EncodeError):
        encode_event("default", "x", [float("nan")])
    with pytest.raises(EncodeError):
        encode_event("msgpack", "x", [object()])


def test_acks_are_decoded_like_python_socketio_call() -> None:
    assert collapse(decode_args(TextValue('["pong"]'))) == "pong"
    assert collapse(decode_args(TextValue("[]"))) is None
    assert collapse(decode_args(TextValue('[1,"a"]'))) == (1, "a")
    assert decode_args(TextValue('[{"_placeholder":true,"num":0}]', [b"\x00\x01"])) == [b"\x00\x01"]
    assert decode_args(BytesValue(bytes.fromhex("91a26f6b"))) == ["ok"]
    with pytest.raises(AckDecodeError):
        decode_args(TextValue('[{"_placeholder":true,"num":3}]', []))
    with pytest.raises(AckDecodeError):
        decode_args(TextValue("{"))
    with pytest.raises(AckDecodeError):
        decode_args(BytesValue(b"\xa2ok"))


def test_server_event_data() -> None:
    # PROTOCOL.md §9 server-event: the map {"key": "a"}
    assert encode_data([{"key": "a"}]) == bytes.fromhex("81a36b6579a161")
    assert msgpack.unpackb(encode_data([1, "b", b"\x00"])) == [1, "b", b"\x00"]
    assert encode_data([]) == b"\xc0"


def test_malformed_messages_are_refused() -> None:
    origin = "NodeA00000000000"
    with pytest.raises(ProtocolError):
        decode_response(b"")
    with pytest.raises(ProtocolError):
        decode_response(msgpack.packb([2, 6, origin, []]))  # another major version
    with pytest.raises(UnknownTypeError):
        decode_response(msgpack.packb([1, 99, origin, 0]))
    with pytest.raises(UnknownTypeError):
        decode_request(msgpack.packb([1, 99, origin, None]))
    with pytest.raises(ProtocolError):
        decode_response(msgpack.packb([1, 6, "not-an-id", []]))
    with pytest.raises(ProtocolError):
        decode_response(msgpack.packb([1, 1, origin, -1]))
    with pytest.raises(ProtocolError):
        decode_response(msgpack.packb([1, 1, origin, 2**32]))  # counts are u32
    with pytest.raises(ProtocolError):
        decode_response(msgpack.packb([1, 1, origin, True]))
    with pytest.raises(ProtocolError):
        decode_response(msgpack.packb([1, 0, origin, origin, True]))  # truncated ack
    with pytest.raises(ProtocolError):
        decode_response(msgpack.packb([1, 2, origin, ["a", b"bin"]], use_bin_type=True))
    with pytest.raises(ProtocolError):
        decode_response(bytes.fromhex("940102b0") + origin.encode() + b"\x91\xa1\xff")  # bad UTF-8


def test_appended_fields_and_trailing_bytes_are_ignored() -> None:
    origin = "NodeB00000000000"
    res = decode_response(msgpack.packb([1, 1, origin, 3, "future", [1, 2]]))
    assert res.count == 3
    res = decode_response(msgpack.packb([1, 6, origin, [], "x"]) + b"\xc0")
    assert res.nodes == []
    # an element this reader skips may hold anything, even invalid UTF-8
    res = decode_response(msgpack.packb([1, 4, origin, 2]).replace(b"\x94", b"\x95", 1) + b"\xa1\xff")
    assert res.count == 2
    # unknown flag bits are ignored
    req = decode_request(
        msgpack.packb([1, 3, origin, None, [2 | 64, [], [], None, None]])
    )
    assert req.opts.flags == 2


def test_json_text_round_trips_through_the_parser() -> None:
    args = ["a", 1, [True, None], {"n": {"m": 2.25}}]
    value, _ = encode_event("default", "ev", args)
    assert json.loads(value.text) == ["ev", *args]
