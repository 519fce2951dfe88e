"""Everything that can go wrong when emitting into the cluster.

Every exception the emitter raises derives from :class:`EmitterError`. The
per-socket results of :meth:`Emitter.emit_with_ack` that are not values are
:class:`AckError` instances, returned (not raised).
"""

from __future__ import annotations

from typing import Sequence

__all__ = [
    "AckDecodeError",
    "AckError",
    "AckTimeoutError",
    "EmitterError",
    "EncodeError",
    "IncompleteError",
    "InvalidPrefixError",
    "NoServersError",
    "PayloadTooLargeError",
    "ProtocolError",
    "ReplyError",
    "RequestTimeoutError",
    "ReservedEventError",
    "UnknownTypeError",
    "UnreachableError",
]

RESERVED_EVENTS = frozenset(
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]
)


class EmitterError(Exception):
    """Base class of every exception raised by the emitter."""


class ReservedEventError(EmitterError, ValueError):
    """socket.io reserves this event name for its own use."""

    def __init__(self, event: str) -> None:
        self.event = event
        super().__init__(
            f"{event!r} is a reserved socket.io event name (connect, connect_error, disconnect, "
            "disconnecting, newListener, removeListener): pick another name"
        )


class InvalidPrefixError(EmitterError, ValueError):
    """The subject prefix is not one or more plain NATS tokens."""

    def __init__(self, prefix: str, reason: str) -> None:
        self.prefix = prefix
        self.reason = reason
        super().__init__(f"invalid subject prefix {prefix[:128]!r}: {reason}")


class EncodeError(EmitterError, TypeError):
    """The arguments cannot be encoded by the servers' socket.io parser."""

    def __init__(self, what: str, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"cannot encode {what}: {cause}")


class PayloadTooLargeError(EmitterError):
    """The encoded message is larger than the NATS server accepts (``max_payload``)."""

    def __init__(self, size: int, max_payload: int) -> None:
        self.size = size
        self.max_payload = max_payload
        super().__init__(
            f"message of {size} bytes exceeds the NATS server's max_payload of {max_payload} "
            "bytes; send smaller payloads or raise max_payload"
        )


class UnreachableError(EmitterError, ConnectionError):
    """NATS could not take the message, or the connection is closed."""

    def __init__(self, action: str, cause: object = None) -> None:
        self.action = action
        self.cause = cause
        why = f": {cause!r}" if cause is not None else ""
        super().__init__(
            f"NATS is unreachable: could not {action}{why}; "
            "check the server URL and that nats-server is running"
        )


class NoServersError(EmitterError):
    """No socket.io server serves this namespace under this prefix (NATS: no responders)."""

    def __init__(self, namespace: str, prefix: str) -> None:
        self.namespace = namespace
        self.prefix = prefix
        super().__init__(
            f"no socket.io server serves namespace {namespace!r} with prefix {prefix!r}: "
            "check the prefix and that the servers started the namespace"
        )


class RequestTimeoutError(EmitterError, TimeoutError):
    """No socket.io server answered at all within the request timeout."""

    def __init__(self, namespace: str, timeout: float) -> None:
        self.namespace = namespace
        self.timeout = timeout
        super().__init__(
            f"no socket.io server of namespace {namespace!r} answered within {timeout:g} s"
        )


class IncompleteError(EmitterError, TimeoutError):
    """Live servers had not answered in full at the timeout.

    Their answers are missing, so no partial result is returned as if it were
    complete. A server that crashed or left before answering is found gone by a
    probe and does not cause this error; the ones named here answer probes but
    not the request (overloaded, or messages were lost), or, for an
    emit_with_ack, sent their ack count and then stopped (a server that has
    started answering is not probed). ``missing`` holds their ids.
    """

    def __init__(self, missing: Sequence[str], timeout: float) -> None:
        self.missing = sorted(missing)
        self.timeout = timeout
        super().__init__(
            f"request timed out after {timeout:g} s without the answers of live servers "
            + ", ".join(self.missing)
        )


class ProtocolError(EmitterError, ValueError):
    """A message is malformed (or of another protocol version)."""


class UnknownTypeError(ProtocolError):
    """A well-formed message of a type this implementation does not know."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        super().__init__(f"unknown message type {kind}")


class AckError(Exception):
    """Why one socket's ack is missing; returned in :meth:`Emitter.emit_with_ack` results."""


class AckTimeoutError(AckError, TimeoutError):
    """The client did not acknowledge within the ack timeout."""

    def __init__(self) -> None:
        super().__init__("the client did not acknowledge in time")


class AckDecodeError(AckError):
    """The ack arrived but could not be decoded."""

    def __init__(self, why: str) -> None:
        super().__init__(f"cannot decode the ack: {why}")


class ReplyError(Exception):
    """A server answered a server event or custom request with a failure.

    Returned (not raised) in the results of :meth:`Emitter.server_emit_with_ack`
    and :meth:`Emitter.custom_request`.
    """
