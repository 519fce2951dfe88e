"""Events and acks in the form of the servers' socket.io parser (PROTOCOL.md §3).

* ``"default"`` (socketioxide's common parser): the JSON text
  ``["event", arg1, ...]``, compact, non-ASCII as is; each ``bytes`` argument
  (at any depth) is replaced by ``{"_placeholder":true,"num":N}`` and travels
  as the N-th attachment; the packet is then a binary event (type 5).
* ``"msgpack"``: the MessagePack array ``[event, arg1, ...]``, ``bytes`` as
  ``bin``; always an event packet (type 2).
"""

from __future__ import annotations

import json
from typing import Any, List, Optional, Sequence, Tuple

import msgpack

from .errors import AckDecodeError, EncodeError
from .protocol import BytesValue, PacketType, TextValue, Value

PARSERS = ("default", "msgpack")
_ALIASES = {"default": "default", "common": "default", "msgpack": "msgpack"}

_BINARY = (bytes, bytearray, memoryview)


def normalize_parser(parser: str) -> str:
    """``"default"`` (alias ``"common"``) or ``"msgpack"``; anything else is a ValueError."""
    try:
        return _ALIASES[parser]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown parser {parser!r}: use 'default' or 'msgpack', as the servers do"
        ) from None


def _deconstruct(obj: Any, bins: List[bytes]) -> Any:
    if isinstance(obj, _BINARY):
        bins.append(bytes(obj))
        return {"_placeholder": True, "num": len(bins) - 1}
    if isinstance(obj, (list, tuple)):
        return [_deconstruct(x, bins) for x in obj]
    if isinstance(obj, dict):
        return {k: _deconstruct(v, bins) for k, v in obj.items()}
    return obj


def _reconstruct(obj: Any, bins: Sequence[bytes]) -> Any:
    if isinstance(obj, list):
        return [_reconstruct(x, bins) for x in obj]
    if isinstance(obj, dict):
        if obj.get("_placeholder") is True:
            num = obj.get("num")
            if isinstance(num, int) and not isinstance(num, bool) and 0 <= num < len(bins):
                return bins[num]
            raise AckDecodeError(f"invalid binary placeholder {obj!r}")
        return {k: _reconstruct(v, bins) for k, v in obj.items()}
    return obj


def encode_event(parser: str, event: str, args: Sequence[Any]) -> Tuple[Value, int]:
    """The value and packet type of ``event`` with ``args``, as the servers' parser writes them."""
    if parser == "msgpack":
        try:
            data = msgpack.packb([event, *args], use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise EncodeError("the event arguments as MessagePack", e) from e
        return BytesValue(data), PacketType.EVENT
    bins: List[bytes] = []
    try:
        text = json.dumps(
            [event, *(_deconstruct(a, bins) for a in args)],
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except (TypeError, ValueError, RecursionError) as e:
        raise EncodeError("the event arguments as JSON", e) from e
    if bins:
        return TextValue(text, bins), PacketType.BINARY_EVENT
    return TextValue(text, None), PacketType.EVENT


def decode_args(value: Value) -> List[Any]:
    """The arguments a client acked with (a list), decoded from either parser's value."""
    if isinstance(value, BytesValue):
        try:
            args = msgpack.unpackb(value.bytes, raw=False, strict_map_key=False)
        except Exception as e:  # noqa: BLE001 - any failure is an undecodable ack
            raise AckDecodeError(f"not MessagePack: {e}") from e
    else:
        try:
            args = json.loads(value.text)
        except ValueError as e:
            raise AckDecodeError(f"not JSON: {e}") from e
        args = _reconstruct(args, value.attachments or [])
    if not isinstance(args, list):
        raise AckDecodeError("the ack data is not an array")
    return args


def collapse(args: List[Any]) -> Any:
    """As python-socketio's ``call()``: no argument → None, one → itself, several → a tuple."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


def encode_data(args: Sequence[Any]) -> bytes:
    """MessagePack data of a server event: one argument as itself, several as an array,
    none as nil (what the Rust emitter's ``server_emit(event, &data)`` writes)."""
    data: Optional[Any]
    if not args:
        data = None
    elif len(args) == 1:
        data = args[0]
    else:
        data = list(args)
    try:
        packed: bytes = msgpack.packb(data, use_bin_type=True)
        return packed
    except (TypeError, ValueError, OverflowError) as e:
        raise EncodeError("the data as MessagePack", e) from e


def decode_data(data: bytes) -> Any:
    """MessagePack data of a reply (``bin`` as ``bytes``, maps as dicts)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
