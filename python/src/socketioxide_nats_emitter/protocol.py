"""The socketioxide-nats wire protocol, version 1 (PROTOCOL.md): ids, subjects,
and the MessagePack encoding of every request and response.

Pure data and functions, no I/O. Every message is one MessagePack array; the
encoder writes exactly what the Rust protocol crate writes (smallest integer,
``str`` for text, ``bin`` for binary, smallest array header), and the decoder
accepts any integer width, ignores appended elements and refuses anything else
with a :class:`~socketioxide_nats_emitter.errors.ProtocolError`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, List, Optional, Union

import msgpack

from .errors import InvalidPrefixError, ProtocolError, UnknownTypeError

VERSION = 1
DEFAULT_PREFIX = "socket.io"
MAX_PREFIX_LEN = 128
MAX_TOKEN_LEN = 200

# Broadcast flags (opts.flags).
LOCAL = 1
BROADCAST = 2
VOLATILE = 4
_KNOWN_FLAGS = LOCAL | BROADCAST | VOLATILE

_ID = re.compile(r"[A-Za-z0-9_-]{16}")
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_U64_MAX = (1 << 64) - 1
_U32_MAX = (1 << 32) - 1
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


class RequestType(IntEnum):
    """The type of a request (PROTOCOL.md §4)."""

    BROADCAST = 0
    BROADCAST_WITH_ACK = 1
    DISCONNECT_SOCKETS = 2
    ALL_ROOMS = 3
    ADD_SOCKETS = 4
    DEL_SOCKETS = 5
    FETCH_SOCKETS = 6
    HEARTBEAT = 20
    HELLO = 21
    GOODBYE = 22
    DISCOVER = 23
    SERVER_EVENT = 30
    CUSTOM_REQUEST = 31


class ResponseType(IntEnum):
    """The type of a response (PROTOCOL.md §5)."""

    ACK = 0
    ACK_COUNT = 1
    ROOMS = 2
    SOCKETS = 3
    DONE = 4
    REPLY = 5
    NODES = 6


class PacketType(IntEnum):
    """A socket.io packet type."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


# ===== ids and subjects =====


def new_id() -> str:
    """A random socketioxide id: 16 characters of url-safe base64 without padding."""
    return base64.urlsafe_b64encode(os.urandom(12)).decode("ascii")


def is_id(value: object) -> bool:
    """Whether ``value`` is a valid socketioxide id (``[A-Za-z0-9_-]{16}``)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def validate_prefix(prefix: str) -> None:
    """Raise :class:`InvalidPrefixError` unless ``prefix`` is one or more plain tokens."""
    if not isinstance(prefix, str) or not prefix:
        raise InvalidPrefixError(str(prefix), "it is empty")
    if len(prefix.encode("utf-8")) > MAX_PREFIX_LEN:
        raise InvalidPrefixError(prefix, "it is longer than 128 bytes")
    for tok in prefix.split("."):
        if not tok:
            raise InvalidPrefixError(
                prefix, "it has an empty token (leading, trailing or double '.')"
            )
        if not tok.isascii() or _PLAIN_TOKEN.fullmatch(tok) is None:
            raise InvalidPrefixError(
                prefix, "tokens may only contain ASCII letters, digits, '-' and '_'"
            )


_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


def ns_token(ns: str) -> str:
    """Encode a namespace path as exactly one NATS subject token (PROTOCOL.md §2)."""
    if ns == "":
        return "_"
    raw = ns.encode("utf-8")
    out = "".join(chr(b) if b in _KEEP else f"_{b:02X}" for b in raw)
    if len(out) > MAX_TOKEN_LEN:
        return "_h" + hashlib.sha256(raw).hexdigest()
    return out


class Subjects:
    """The subjects of one namespace under one prefix."""

    __slots__ = ("base",)

    def __init__(self, prefix: str, ns: str) -> None:
        self.base = f"{prefix}.{ns_token(ns)}"

    def broadcast(self, origin: str) -> str:
        """``{prefix}.{ns}.b.{origin}``: a request to every node."""
        return f"{self.base}.b.{origin}"

    def node(self, target: str, origin: str) -> str:
        """``{prefix}.{ns}.n.{target}.{origin}``: a request to node ``target`` only."""
        return f"{self.base}.n.{target}.{origin}"

    def reply(self, requester: str, req: str) -> str:
        """``{prefix}.{ns}.r.{requester}.{req}``: the answers to request ``req``."""
        return f"{self.base}.r.{requester}.{req}"

    def reply_filter(self, requester: str) -> str:
        """``{prefix}.{ns}.r.{requester}.*``: every answer to ``requester``."""
        return f"{self.base}.r.{requester}.*"


# ===== messages =====


@dataclass
class BroadcastOptions:
    """Which sockets an operation applies to (``opts``, PROTOCOL.md §3)."""

    flags: int = BROADCAST
    rooms: List[str] = field(default_factory=list)
    except_: List[str] = field(default_factory=list)
    sid: Optional[str] = None
    server_id: Optional[str] = None


@dataclass
class TextValue:
    """A value of the default ("common") parser: JSON text and binary attachments."""

    text: str
    attachments: Optional[List[bytes]] = None

    kind = 0


@dataclass
class BytesValue:
    """A value of the msgpack parser: the MessagePack array ``[event, *args]``."""

    bytes: bytes

    kind = 1


Value = Union[TextValue, BytesValue]


@dataclass
class Packet:
    """A socket.io packet, as socketioxide holds it."""

    ns: str
    type: int
    data: Optional[Value] = None
    ack: Optional[int] = None
    error: Optional[str] = None


@dataclass
class SocketData:
    """One socket of a ``Sockets`` answer."""

    id: str
    server_id: str
    ns: str


@dataclass
class Request:
    """A request (PROTOCOL.md §4). Only the fields of its ``type`` are used."""

    type: int
    origin: str
    id: Optional[str] = None
    opts: Optional[BroadcastOptions] = None
    packet: Optional[Packet] = None
    ack_timeout_ms: Optional[int] = None
    rooms: Optional[List[str]] = None
    event: Optional[str] = None
    data: Optional[bytes] = None

    def encode(self) -> bytes:
        """The MessagePack bytes of this request."""
        return encode_request(self)


@dataclass
class Response:
    """A response (PROTOCOL.md §5). Only the fields of its ``type`` are used.

    Ack: ``sid``, ``ok``, then ``value`` or ``error`` (the MessagePack bytes of
    socketioxide's ``AckError``); AckCount and Done: ``count``; Rooms: ``rooms``;
    Sockets: ``sockets``; Reply: ``ok``, then ``data`` or ``reason``; Nodes: ``nodes``.
    """

    type: int
    origin: str
    sid: Optional[str] = None
    ok: Optional[bool] = None
    value: Optional[Value] = None
    error: Optional[bytes] = None
    count: Optional[int] = None
    rooms: Optional[List[str]] = None
    sockets: Optional[List[SocketData]] = None
    data: Optional[bytes] = None
    reason: Optional[str] = None
    nodes: Optional[List[str]] = None

    def encode(self) -> bytes:
        """The MessagePack bytes of this response."""
        return encode_response(self)


# ===== encoding =====


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise ProtocolError(f"{what} is required for this message type")
    return value


def _opts(opts: Optional[BroadcastOptions]) -> List[Any]:
    o = _need(opts, "opts")
    return [o.flags, list(o.rooms), list(o.except_), o.sid, o.server_id]


def _value(v: Value) -> List[Any]:
    if isinstance(v, TextValue):
        atts = None if v.attachments is None else [bytes(b) for b in v.attachments]
        return [0, v.text, atts]
    if isinstance(v, BytesValue):
        return [1, bytes(v.bytes)]
    raise ProtocolError(f"not a value: {v!r}")


def _packet(p: Optional[Packet]) -> List[Any]:
    p = _need(p, "packet")
    return [p.ns, int(p.type), None if p.data is None else _value(p.data), p.ack, p.error]


def _pack(fields: List[Any]) -> bytes:
    try:
        packed: bytes = msgpack.packb(fields, use_bin_type=True)
        return packed
    except (TypeError, ValueError, OverflowError) as e:
        raise ProtocolError(f"cannot encode the message: {e}") from e


def encode_request(req: Request) -> bytes:
    """Encode a request exactly as the Rust protocol crate does."""
    t = RequestType(req.type)
    fields: List[Any] = [VERSION, int(t), req.origin, req.id]
    if t in (RequestType.BROADCAST, RequestType.BROADCAST_WITH_ACK):
        fields += [_opts(req.opts), _packet(req.packet)]
        if t is RequestType.BROADCAST_WITH_ACK:
            fields.append(req.ack_timeout_ms)
    elif t in (RequestType.ADD_SOCKETS, RequestType.DEL_SOCKETS):
        fields += [_opts(req.opts), list(_need(req.rooms, "rooms"))]
    elif t in (RequestType.DISCONNECT_SOCKETS, RequestType.ALL_ROOMS, RequestType.FETCH_SOCKETS):
        fields.append(_opts(req.opts))
    elif t is RequestType.SERVER_EVENT:
        fields += [_need(req.event, "event"), bytes(_need(req.data, "data"))]
    elif t is RequestType.CUSTOM_REQUEST:
        fields.append(bytes(_need(req.data, "data")))
    return _pack(fields)


def encode_response(res: Response) -> bytes:
    """Encode a response exactly as the Rust protocol crate does."""
    t = ResponseType(res.type)
    fields: List[Any] = [VERSION, int(t), res.origin]
    if t is ResponseType.ACK:
        fields += [_need(res.sid, "sid"), bool(res.ok)]
        fields.append(_value(_need(res.value, "value")) if res.ok else bytes(_need(res.error, "error")))
    elif t in (ResponseType.ACK_COUNT, ResponseType.DONE):
        fields.append(_need(res.count, "count"))
    elif t is ResponseType.ROOMS:
        fields.append(list(_need(res.rooms, "rooms")))
    elif t is ResponseType.SOCKETS:
        fields.append([[s.id, s.server_id, s.ns] for s in _need(res.sockets, "sockets")])
    elif t is ResponseType.REPLY:
        fields.append(bool(res.ok))
        fields.append(bytes(_need(res.data, "data")) if res.ok else _need(res.reason, "reason"))
    elif t is ResponseType.NODES:
        fields.append(list(_need(res.nodes, "nodes")))
    return _pack(fields)


# ===== decoding =====


def _unpack(payload: bytes) -> Any:
    try:
        # surrogateescape: an invalid str in an element this reader skips does not
        # spoil the message (as in Rust); a str it reads is checked in `_str`.
        return msgpack.unpackb(
            payload, raw=False, strict_map_key=False, unicode_errors="surrogateescape"
        )
    except msgpack.ExtraData as e:  # trailing bytes after the array: ignored
        return e.unpacked
    except Exception as e:  # noqa: BLE001 - any msgpack failure is a malformed message
        raise ProtocolError(f"not MessagePack: {e}") from e


def _array(v: Any, what: str, min_len: int = 0) -> List[Any]:
    if not isinstance(v, list):
        raise ProtocolError(f"{what}: expected an array")
    if len(v) < min_len:
        raise ProtocolError(f"{what}: truncated ({len(v)} elements, {min_len} needed)")
    return v


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise ProtocolError(f"{what}: expected a str")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ProtocolError(f"{what}: invalid UTF-8") from e
    return v


def _opt_str(v: Any, what: str) -> Optional[str]:
    return None if v is None else _str(v, what)


def _int(v: Any, what: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(f"{what}: expected an integer")
    if not lo <= v <= hi:
        raise ProtocolError(f"{what}: {v} out of range")
    return v


def _uint(v: Any, what: str) -> int:
    return _int(v, what, 0, _U64_MAX)


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ProtocolError(f"{what}: expected a bool")
    return v


def _bin(v: Any, what: str) -> bytes:
    if not isinstance(v, bytes):
        raise ProtocolError(f"{what}: expected bin")
    return v


def _id(v: Any, what: str) -> str:
    s = _str(v, what)
    if not is_id(s):
        raise ProtocolError(f"{what}: {s[:40]!r} is not a 16-character id")
    return s


def _opt_id(v: Any, what: str) -> Optional[str]:
    return None if v is None else _id(v, what)


def _rooms(v: Any, what: str) -> List[str]:
    return [_str(r, what) for r in _array(v, what)]


def _read_opts(v: Any) -> BroadcastOptions:
    a = _array(v, "broadcast options", 5)
    return BroadcastOptions(
        flags=_uint(a[0], "broadcast flags") & _KNOWN_FLAGS,
        rooms=_rooms(a[1], "rooms"),
        except_=_rooms(a[2], "except rooms"),
        sid=_opt_id(a[3], "socket id"),
        server_id=_opt_id(a[4], "server id"),
    )


def _read_value(v: Any) -> Value:
    a = _array(v, "payload", 2)
    kind = _uint(a[0], "payload type")
    if kind == 0:
        text = _str(a[1], "payload text")
        atts = None
        if len(a) >= 3 and a[2] is not None:
            atts = [_bin(b, "binary attachment") for b in _array(a[2], "binary attachments")]
        return TextValue(text, atts)
    if kind == 1:
        return BytesValue(_bin(a[1], "binary payload"))
    raise ProtocolError(f"payload type: invalid tag {kind}")


def _read_packet(v: Any) -> Packet:
    a = _array(v, "packet", 5)
    ns = _str(a[0], "packet namespace")
    kind = _uint(a[1], "packet type")
    data = None if a[2] is None else _read_value(a[2])
    ack = None if a[3] is None else _int(a[3], "packet ack id", _I64_MIN, _I64_MAX)
    error = _opt_str(a[4], "packet error")
    if kind > 6:
        raise ProtocolError(f"packet type: invalid tag {kind}")
    if kind in (2, 3, 5, 6) and data is None:
        raise ProtocolError("packet: missing payload")
    if kind in (3, 6) and ack is None:
        raise ProtocolError("packet: missing ack id")
    if kind == 4 and error is None:
        raise ProtocolError("packet: missing connect error")
    return Packet(ns=ns, type=kind, data=data, ack=ack, error=error)


def _header(payload: bytes, what: str) -> List[Any]:
    a = _array(_unpack(payload), what, 4)
    version = _uint(a[0], "protocol version")
    if version != VERSION:
        raise ProtocolError(f"unsupported protocol version {version}")
    return a


def decode_request(payload: bytes) -> Request:
    """Decode a request; raises :class:`ProtocolError` (or :class:`UnknownTypeError`)."""
    a = _header(payload, "request")
    kind = _uint(a[1], "request type")
    try:
        t = RequestType(kind)
    except ValueError:
        raise UnknownTypeError(kind) from None
    req = Request(type=t, origin=_id(a[2], "request origin"), id=_opt_id(a[3], "request id"))
    if t in (RequestType.BROADCAST, RequestType.BROADCAST_WITH_ACK):
        _array(a, "request", 7 if t is RequestType.BROADCAST_WITH_ACK else 6)
        req.opts = _read_opts(a[4])
        req.packet = _read_packet(a[5])
        if t is RequestType.BROADCAST_WITH_ACK:
            req.ack_timeout_ms = None if a[6] is None else _uint(a[6], "ack timeout")
    elif t in (RequestType.ADD_SOCKETS, RequestType.DEL_SOCKETS):
        _array(a, "request", 6)
        req.opts = _read_opts(a[4])
        req.rooms = _rooms(a[5], "rooms")
    elif t in (RequestType.DISCONNECT_SOCKETS, RequestType.ALL_ROOMS, RequestType.FETCH_SOCKETS):
        _array(a, "request", 5)
        req.opts = _read_opts(a[4])
    elif t is RequestType.SERVER_EVENT:
        _array(a, "request", 6)
        req.event = _str(a[4], "server event name")
        req.data = _bin(a[5], "server event data")
    elif t is RequestType.CUSTOM_REQUEST:
        _array(a, "request", 5)
        req.data = _bin(a[4], "custom request data")
    return req


def decode_response(payload: bytes) -> Response:
    """Decode a response; raises :class:`ProtocolError` (or :class:`UnknownTypeError`)."""
    a = _header(payload, "response")
    kind = _uint(a[1], "response type")
    try:
        t = ResponseType(kind)
    except ValueError:
        raise UnknownTypeError(kind) from None
    res = Response(type=t, origin=_id(a[2], "response origin"))
    if t is ResponseType.ACK:
        _array(a, "ack", 6)
        res.sid = _id(a[3], "acking socket id")
        res.ok = _bool(a[4], "ack status")
        if res.ok:
            res.value = _read_value(a[5])
        else:
            res.error = _bin(a[5], "ack error")
    elif t in (ResponseType.ACK_COUNT, ResponseType.DONE):
        res.count = _int(a[3], "count", 0, _U32_MAX)
    elif t is ResponseType.ROOMS:
        res.rooms = _rooms(a[3], "rooms")
    elif t is ResponseType.SOCKETS:
        sockets = []
        for s in _array(a[3], "sockets"):
            s = _array(s, "socket", 3)
            sockets.append(
                SocketData(
                    id=_id(s[0], "socket id"),
                    server_id=_id(s[1], "socket server id"),
                    ns=_str(s[2], "socket namespace"),
                )
            )
        res.sockets = sockets
    elif t is ResponseType.REPLY:
        _array(a, "reply", 5)
        res.ok = _bool(a[3], "reply status")
        if res.ok:
            res.data = _bin(a[4], "reply data")
        else:
            res.reason = _str(a[4], "reply error")
    elif t is ResponseType.NODES:
        res.nodes = [_id(n, "node id") for n in _array(a[3], "nodes")]
    return res
