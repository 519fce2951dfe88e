"""The emitter: emit into a socketioxide-nats cluster from a process that is not a
socket.io server, in the style of python-socketio's server API."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable, List, NamedTuple, Optional, Tuple, Union

import msgpack

from .errors import (
    RESERVED_EVENTS,
    AckDecodeError,
    AckError,
    AckTimeoutError,
    ReplyError,
    ReservedEventError,
    UnreachableError,
)
from .parser import collapse, decode_args, decode_data, encode_data, encode_event, normalize_parser
from .protocol import (
    BROADCAST,
    DEFAULT_PREFIX,
    VOLATILE,
    BroadcastOptions,
    Packet,
    Request,
    RequestType,
    ResponseType,
    Subjects,
    new_id,
    validate_prefix,
)
from .request import Collected, Target, merge_rooms, publish, request
from .tracker import EXPECT_ACKS, Expect

log = logging.getLogger("socketioxide_nats_emitter")

Rooms = Union[str, Iterable[str], None]

_U64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class SocketInfo:
    """A socket of the cluster, as returned by :meth:`Emitter.fetch_sockets`."""

    #: The socket id.
    id: str
    #: The id of the server holding it.
    server_id: str
    #: Its namespace.
    ns: str


class Ack(NamedTuple):
    """One socket's answer to :meth:`Emitter.emit_with_ack`; unpacks as ``(sid, result)``.

    ``result`` is what the client acknowledged with (no argument: None, one: the
    argument, several: a tuple), or an :class:`AckError` instance
    (:class:`AckTimeoutError` when the client did not answer in time).
    """

    sid: str
    result: Any

    @property
    def ok(self) -> bool:
        """Whether the client acknowledged (``result`` is its value)."""
        return not isinstance(self.result, AckError)


class Reply(NamedTuple):
    """One server's answer to :meth:`Emitter.server_emit_with_ack` or
    :meth:`Emitter.custom_request`; unpacks as ``(server_id, result)``.

    ``result`` is the data the server answered with (MessagePack decoded), or a
    :class:`ReplyError` instance with the reason it gave.
    """

    server_id: str
    result: Any

    @property
    def ok(self) -> bool:
        return not isinstance(self.result, ReplyError)


def _rooms(rooms: Rooms, what: str) -> List[str]:
    if rooms is None:
        return []
    if isinstance(rooms, str):
        return [rooms]
    out = list(rooms)
    for r in out:
        if not isinstance(r, str):
            raise TypeError(f"{what} takes room names or socket ids (str), not {r!r}")
    return out


def _namespace(namespace: Optional[str]) -> str:
    if namespace is None:
        return "/"
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, not {namespace!r}")
    return namespace if namespace.startswith("/") else "/" + namespace


def _seconds(value: float, what: str) -> float:
    value = float(value)
    if not value >= 0:
        raise ValueError(f"{what} must be a number of seconds >= 0, not {value!r}")
    return value


def _ack_result(res: Any) -> Any:
    if res.ok:
        try:
            return collapse(decode_args(res.value))
        except AckDecodeError as e:
            return e
    # socketioxide's AckError, as its server encoded it with rmp-serde.
    try:
        err = msgpack.unpackb(res.error, raw=False, strict_map_key=False)
    except Exception as e:  # noqa: BLE001
        return AckError(f"the server reported an undecodable ack error: {e}")
    if err == "Timeout":
        return AckTimeoutError()
    return AckError(f"the server reported: {err!r}")


class Emitter:
    """Emits into a socketioxide-nats cluster over a connected ``nats-py`` client.

    ``parser`` and ``prefix`` must be the servers' own. ``request_timeout``
    bounds requests that wait for the servers (fetch_sockets, rooms,
    server_count, the ack counts of emit_with_ack); ``ack_timeout`` is how long
    clients have to acknowledge ``emit_with_ack``; ``probe_timeout`` how long a
    silent server has to answer a liveness probe (keep it the servers' own).

    The emitter is never counted as a server: it never sends Hello or Heartbeat.
    """

    def __init__(
        self,
        nc: Any,
        prefix: str = DEFAULT_PREFIX,
        parser: str = "default",
        request_timeout: float = 5.0,
        ack_timeout: float = 5.0,
        probe_timeout: float = 0.5,
    ) -> None:
        validate_prefix(prefix)
        self.nc = nc
        self.prefix = prefix
        self.parser = normalize_parser(parser)
        self.request_timeout = _seconds(request_timeout, "request_timeout")
        self.ack_timeout = _seconds(ack_timeout, "ack_timeout")
        self.probe_timeout = _seconds(probe_timeout, "probe_timeout")
        self._uid = new_id()

    def __repr__(self) -> str:
        return (
            f"Emitter(uid={self._uid!r}, prefix={self.prefix!r}, parser={self.parser!r}, "
            f"request_timeout={self.request_timeout}, ack_timeout={self.ack_timeout}, "
            f"probe_timeout={self.probe_timeout})"
        )

    @property
    def uid(self) -> str:
        """The id this emitter signs its messages with (the ``origin`` of its requests)."""
        return self._uid

    # ----- building blocks -----

    def _subjects(self, ns: str) -> Subjects:
        return Subjects(self.prefix, ns)

    def _target(self, ns: str) -> Target:
        return Target(
            nc=self.nc,
            subjects=self._subjects(ns),
            origin=self._uid,
            ns=ns,
            prefix=self.prefix,
            probe_timeout=self.probe_timeout,
        )

    @staticmethod
    def _opts(to: Rooms, skip: Rooms, volatile: bool = False) -> BroadcastOptions:
        flags = BROADCAST | (VOLATILE if volatile else 0)
        return BroadcastOptions(flags=flags, rooms=_rooms(to, "to"), except_=_rooms(skip, "skip"))

    def _packet(self, ns: str, event: str, args: Tuple[Any, ...]) -> Packet:
        if not isinstance(event, str):
            raise TypeError(f"event must be a str, not {event!r}")
        if event in RESERVED_EVENTS:
            raise ReservedEventError(event)
        value, kind = encode_event(self.parser, event, args)
        return Packet(ns=ns, type=kind, data=value)

    async def _publish(self, ns: str, req: Request) -> None:
        req.origin = self._uid
        await publish(self.nc, self._subjects(ns).broadcast(self._uid), req.encode())

    async def _ask(self, ns: str, req: Request, kind: ResponseType) -> Collected:
        return await request(self._target(ns), (req, Expect(kind)), self.request_timeout)

    # ----- emitting -----

    async def emit(
        self,
        event: str,
        *args: Any,
        to: Rooms = None,
        skip: Rooms = None,
        namespace: str = "/",
        volatile: bool = False,
    ) -> None:
        """Emit ``event`` with ``args`` to the sockets of every server.

        ``to``: a room or socket id, or several (a socket in several is reached
        once); None for every socket of the namespace. ``skip``: rooms or socket
        ids to leave out. ``bytes`` arguments, at any depth, travel as binary.
        Returns once the message is handed to the NATS client (see :meth:`flush`).
        """
        ns = _namespace(namespace)
        packet = self._packet(ns, event, args)
        req = Request(
            type=RequestType.BROADCAST,
            origin=self._uid,
            opts=self._opts(to, skip, volatile),
            packet=packet,
        )
        await self._publish(ns, req)

    async def emit_with_ack(
        self,
        event: str,
        *args: Any,
        to: Rooms = None,
        skip: Rooms = None,
        namespace: str = "/",
        timeout: Optional[float] = None,
    ) -> List[Ack]:
        """Emit ``event`` and collect the acks of the selected sockets of every server.

        Returns one :class:`Ack` ``(sid, result)`` per socket reached, where
        ``result`` is the client's answer or an :class:`AckError` instance
        (:class:`AckTimeoutError` if it did not answer within ``timeout``,
        default ``ack_timeout``). Ends as soon as every live server reported all
        its acks; a crashed server is found gone by a probe.

        Raises :class:`IncompleteError` if a live server has not reported all its
        acks within ``request_timeout + timeout``, :class:`NoServersError` if no
        server serves the namespace.
        """
        ns = _namespace(namespace)
        ack_timeout = self.ack_timeout if timeout is None else _seconds(timeout, "timeout")
        packet = self._packet(ns, event, args)
        req = Request(
            type=RequestType.BROADCAST_WITH_ACK,
            origin=self._uid,
            opts=self._opts(to, skip),
            packet=packet,
            # Saturating, as the Rust emitter: a caller may ask for math.inf.
            ack_timeout_ms=min(_U64_MAX, int(round(ack_timeout * 1000)))
            if math.isfinite(ack_timeout)
            else _U64_MAX,
        )
        wait = self.request_timeout + ack_timeout
        collected = await request(self._target(ns), (req, EXPECT_ACKS), wait)
        return [
            Ack(res.sid, _ack_result(res))
            for res in collected.responses
            if res.type == ResponseType.ACK and res.sid is not None
        ]

    # ----- sockets and rooms -----

    async def enter_room(
        self, room: Rooms, *, to: Rooms = None, skip: Rooms = None, namespace: str = "/"
    ) -> None:
        """Make the selected sockets of every server join ``room`` (one or several).

        ``to`` selects sockets by room or socket id (None: every socket of the
        namespace), like socket.io's ``io.in(to).socketsJoin(room)``. ``to`` is
        keyword-only: python-socketio's ``enter_room(sid, room)`` takes them the
        other way round."""
        ns = _namespace(namespace)
        req = Request(
            type=RequestType.ADD_SOCKETS,
            origin=self._uid,
            opts=self._opts(to, skip),
            rooms=_rooms(room, "room"),
        )
        await self._publish(ns, req)

    async def leave_room(
        self, room: Rooms, *, to: Rooms = None, skip: Rooms = None, namespace: str = "/"
    ) -> None:
        """Make the selected sockets of every server leave ``room`` (one or several),
        like socket.io's ``io.in(to).socketsLeave(room)``."""
        ns = _namespace(namespace)
        req = Request(
            type=RequestType.DEL_SOCKETS,
            origin=self._uid,
            opts=self._opts(to, skip),
            rooms=_rooms(room, "room"),
        )
        await self._publish(ns, req)

    async def disconnect(
        self, to: Rooms = None, *, skip: Rooms = None, namespace: str = "/"
    ) -> None:
        """Disconnect the selected sockets of every server (None: every socket of
        the namespace), like socket.io's ``io.in(to).disconnectSockets()``."""
        ns = _namespace(namespace)
        req = Request(
            type=RequestType.DISCONNECT_SOCKETS, origin=self._uid, opts=self._opts(to, skip)
        )
        await self._publish(ns, req)

    async def fetch_sockets(
        self, to: Rooms = None, *, skip: Rooms = None, namespace: str = "/"
    ) -> List[SocketInfo]:
        """The selected sockets of every server.

        Ends as soon as every live server answered. Raises :class:`IncompleteError`
        rather than returning a partial list if a live server did not answer
        within ``request_timeout``."""
        ns = _namespace(namespace)
        req = Request(type=RequestType.FETCH_SOCKETS, origin=self._uid, opts=self._opts(to, skip))
        collected = await self._ask(ns, req, ResponseType.SOCKETS)
        return [
            SocketInfo(id=s.id, server_id=s.server_id, ns=s.ns)
            for res in collected.responses
            for s in res.sockets or []
        ]

    async def rooms(
        self, namespace: str = "/", *, to: Rooms = None, skip: Rooms = None
    ) -> List[str]:
        """The rooms of the selected sockets (default: all) of every server, sorted.

        Raises :class:`IncompleteError` rather than returning a partial list if a
        live server did not answer within ``request_timeout``."""
        ns = _namespace(namespace)
        req = Request(type=RequestType.ALL_ROOMS, origin=self._uid, opts=self._opts(to, skip))
        collected = await self._ask(ns, req, ResponseType.ROOMS)
        return merge_rooms(collected.responses)

    async def server_ids(self, namespace: str = "/") -> List[str]:
        """The ids of the servers of this namespace: those that answered, once every
        server named by another answered or was found gone, or at the timeout."""
        collected = await request(
            self._target(_namespace(namespace)), None, self.request_timeout
        )
        return collected.nodes

    async def server_count(self, namespace: str = "/") -> int:
        """How many servers serve this namespace (the emitter is never counted)."""
        return len(await self.server_ids(namespace))

    # ----- server-side events -----

    async def server_emit(self, event: str, *args: Any, namespace: str = "/") -> None:
        """Emit a server-side event to every server of the namespace; their handlers
        receive it like one sent by a server. The data is MessagePack: one
        argument as itself, several as an array, none as nil."""
        ns = _namespace(namespace)
        if not isinstance(event, str):
            raise TypeError(f"event must be a str, not {event!r}")
        req = Request(
            type=RequestType.SERVER_EVENT, origin=self._uid, event=event, data=encode_data(args)
        )
        await self._publish(ns, req)

    async def server_emit_with_ack(
        self, event: str, *args: Any, namespace: str = "/"
    ) -> List[Reply]:
        """:meth:`server_emit`, and collect every server's acknowledgement:
        one :class:`Reply` ``(server_id, result)`` per server."""
        ns = _namespace(namespace)
        if not isinstance(event, str):
            raise TypeError(f"event must be a str, not {event!r}")
        req = Request(
            type=RequestType.SERVER_EVENT, origin=self._uid, event=event, data=encode_data(args)
        )
        return _replies(await self._ask(ns, req, ResponseType.REPLY))

    async def custom_request(self, *args: Any, namespace: str = "/") -> List[Reply]:
        """A custom request (the ``serverSideEmit``-like ``customRequest`` of the
        Node.js adapters): every server answers through its custom hook.
        One :class:`Reply` ``(server_id, result)`` per server."""
        ns = _namespace(namespace)
        req = Request(type=RequestType.CUSTOM_REQUEST, origin=self._uid, data=encode_data(args))
        return _replies(await self._ask(ns, req, ResponseType.REPLY))

    # ----- lifecycle -----

    async def flush(self) -> None:
        """Wait until everything published so far has been written to NATS.

        Emits return once the NATS client queued the message: a process that
        exits right after emitting should flush first."""
        try:
            await self.nc.flush(timeout=max(self.request_timeout, 0.001))
        except Exception as e:  # noqa: BLE001
            raise UnreachableError(f"flush within {self.request_timeout:g} s", e) from e


def _replies(collected: Collected) -> List[Reply]:
    out = []
    for res in collected.responses:
        if res.ok:
            try:
                result: Any = decode_data(res.data or b"")
            except Exception as e:  # noqa: BLE001
                result = ReplyError(f"undecodable reply data: {e}")
        else:
            result = ReplyError(res.reason or "")
        out.append(Reply(res.origin, result))
    return out
