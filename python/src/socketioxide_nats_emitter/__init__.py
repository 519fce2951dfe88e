"""Emit into a socketioxide-nats cluster from any Python process.

Workers, jobs and services that are not socket.io servers reach the clients of
a `socketioxide-nats` cluster over NATS: emit events (rooms, exceptions,
volatile, binary), collect client acks from every server, make sockets join or
leave rooms or disconnect them, fetch sockets, list rooms, count servers, and
send server-side events. The emitter is never counted as a server.

    import nats
    from socketioxide_nats_emitter import Emitter

    nc = await nats.connect("nats://127.0.0.1:4222")
    emitter = Emitter(nc)
    await emitter.emit("news", "hello", to="room1")
    print(await emitter.fetch_sockets(to="room1"))
    await emitter.flush()
"""

from .emitter import Ack, Emitter, Reply, SocketInfo
from .errors import (
    AckDecodeError,
    AckError,
    AckTimeoutError,
    EmitterError,
    EncodeError,
    IncompleteError,
    InvalidPrefixError,
    NoServersError,
    PayloadTooLargeError,
    ProtocolError,
    ReplyError,
    RequestTimeoutError,
    ReservedEventError,
    UnknownTypeError,
    UnreachableError,
)

__version__ = "0.1.0"

__all__ = [
    "Ack",
    "AckDecodeError",
    "AckError",
    "AckTimeoutError",
    "Emitter",
    "EmitterError",
    "EncodeError",
    "IncompleteError",
    "InvalidPrefixError",
    "NoServersError",
    "PayloadTooLargeError",
    "ProtocolError",
    "Reply",
    "ReplyError",
    "RequestTimeoutError",
    "ReservedEventError",
    "SocketInfo",
    "UnknownTypeError",
    "UnreachableError",
]
