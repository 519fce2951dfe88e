"""The shared protocol test vectors (../vectors/protocol-v1.json): every entry is
decoded into exactly its fields and its fields are encoded into exactly its
bytes, for every request and response type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from socketioxide_nats_emitter.protocol import (
    BroadcastOptions,
    BytesValue,
    Packet,
    Request,
    RequestType,
    Response,
    ResponseType,
    SocketData,
    TextValue,
    Value,
    decode_request,
    decode_response,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "protocol-v1.json"
DATA = json.loads(VECTORS.read_text(encoding="utf-8"))

# ----- the vectors' JSON form <-> this package's dataclasses -----


def _hex(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.hex()


def _unhex(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else bytes.fromhex(s)


def value_to_json(v: Optional[Value]) -> Any:
    if v is None:
        return None
    if isinstance(v, TextValue):
        atts = None if v.attachments is None else [a.hex() for a in v.attachments]
        return {"kind": 0, "text": v.text, "attachments": atts}
    return {"kind": 1, "bytes": v.bytes.hex()}


def value_from_json(j: Any) -> Optional[Value]:
    if j is None:
        return None
    if j["kind"] == 0:
        atts = j["attachments"]
        return TextValue(j["text"], None if atts is None else [bytes.fromhex(a) for a in atts])
    return BytesValue(bytes.fromhex(j["bytes"]))


def opts_to_json(o: BroadcastOptions) -> Dict[str, Any]:
    return {
        "flags": o.flags,
        "rooms": o.rooms,
        "except": o.except_,
        "sid": o.sid,
        "server_id": o.server_id,
    }


def opts_from_json(j: Dict[str, Any]) -> BroadcastOptions:
    return BroadcastOptions(j["flags"], j["rooms"], j["except"], j["sid"], j["server_id"])


def packet_to_json(p: Packet) -> Dict[str, Any]:
    return {
        "ns": p.ns,
        "type": p.type,
        "data": value_to_json(p.data),
        "ack": p.ack,
        "error": p.error,
    }


def packet_from_json(j: Dict[str, Any]) -> Packet:
    return Packet(j["ns"], j["type"], value_from_json(j["data"]), j["ack"], j["error"])


def request_to_json(r: Request) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": int(r.type), "origin": r.origin, "id": r.id}
    t = RequestType(r.type)
    if t in (RequestType.BROADCAST, RequestType.BROADCAST_WITH_ACK):
        out["opts"] = opts_to_json(r.opts)
        out["packet"] = packet_to_json(r.packet)
        if t is RequestType.BROADCAST_WITH_ACK:
            out["ack_timeout_ms"] = r.ack_timeout_ms
    elif t in (RequestType.ADD_SOCKETS, RequestType.DEL_SOCKETS):
        out["opts"] = opts_to_json(r.opts)
        out["rooms"] = r.rooms
    elif t in (RequestType.DISCONNECT_SOCKETS, RequestType.ALL_ROOMS, RequestType.FETCH_SOCKETS):
        out["opts"] = opts_to_json(r.opts)
    elif t is RequestType.SERVER_EVENT:
        out["event"] = r.event
        out["data"] = _hex(r.data)
    elif t is RequestType.CUSTOM_REQUEST:
        out["data"] = _hex(r.data)
    return out


def request_from_json(j: Dict[str, Any]) -> Request:
    return Request(
        type=j["type"],
        origin=j["origin"],
        id=j["id"],
        opts=opts_from_json(j["opts"]) if "opts" in j else None,
        packet=packet_from_json(j["packet"]) if "packet" in j else None,
        ack_timeout_ms=j.get("ack_timeout_ms"),
        rooms=j.get("rooms"),
        event=j.get("event"),
        data=_unhex(j.get("data")),
    )


def response_to_json(r: Response) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": int(r.type), "origin": r.origin}
    t = ResponseType(r.type)
    if t is ResponseType.ACK:
        out["sid"] = r.sid
        out["ok"] = r.ok
        if r.ok:
            out["value"] = value_to_json(r.value)
        else:
            out["error"] = _hex(r.error)
    elif t in (ResponseType.ACK_COUNT, ResponseType.DONE):
        out["count"] = r.count
    elif t is ResponseType.ROOMS:
        out["rooms"] = r.rooms
    elif t is ResponseType.SOCKETS:
        out["sockets"] = [{"id": s.id, "server_id": s.server_id, "ns": s.ns} for s in r.sockets]
    elif t is ResponseType.REPLY:
        out["ok"] = r.ok
        if r.ok:
            out["data"] = _hex(r.data)
        else:
            out["reason"] = r.reason
    elif t is ResponseType.NODES:
        out["nodes"] = r.nodes
    return out


def response_from_json(j: Dict[str, Any]) -> Response:
    sockets = j.get("sockets")
    return Response(
        type=j["type"],
        origin=j["origin"],
        sid=j.get("sid"),
        ok=j.get("ok"),
        value=value_from_json(j.get("value")),
        error=_unhex(j.get("error")),
        count=j.get("count"),
        rooms=j.get("rooms"),
        sockets=None
        if sockets is None
        else [SocketData(s["id"], s["server_id"], s["ns"]) for s in sockets],
        data=_unhex(j.get("data")),
        reason=j.get("reason"),
        nodes=j.get("nodes"),
    )


# ----- the tests -----


def test_the_vectors_are_version_1_and_cover_every_type() -> None:
    assert DATA["protocol_version"] == 1
    assert {e["message"]["type"] for e in DATA["requests"]} == {int(t) for t in RequestType}
    assert {e["message"]["type"] for e in DATA["responses"]} == {int(t) for t in ResponseType}


@pytest.mark.parametrize("entry", DATA["requests"], ids=lambda e: e["name"])
def test_request_vector(entry: Dict[str, Any]) -> None:
    raw = bytes.fromhex(entry["hex"])
    decoded = decode_request(raw)
    assert request_to_json(decoded) == entry["message"]
    assert decoded == request_from_json(entry["message"])
    assert request_from_json(entry["message"]).encode() == raw
    assert decoded.encode() == raw


@pytest.mark.parametrize("entry", DATA["responses"], ids=lambda e: e["name"])
def test_response_vector(entry: Dict[str, Any]) -> None:
    raw = bytes.fromhex(entry["hex"])
    decoded = decode_response(raw)
    assert response_to_json(decoded) == entry["message"]
    assert decoded == response_from_json(entry["message"])
    assert response_from_json(entry["message"]).encode() == raw
    assert decoded.encode() == raw
