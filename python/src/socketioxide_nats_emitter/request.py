"""Asking the servers, and knowing when every live server has answered
(PROTOCOL.md §6 "Completion" and §10), as the Rust emitter's ``request.rs``.

An emitter does not follow heartbeats, so each request goes out together with a
``Discover``, both with reply subjects under a fresh requester id. Every server
answers ``Discover`` with the other servers it knows; the request waits for
every server that answered it, every server named in an answer, and every
server whose answer of the expected type arrives on the request's own reply
subject (only a receiver of the request knows it).

A named server may have crashed: the others keep naming it until their
heartbeat timeout. So 50 ms into the request, every awaited server that has
sent nothing of what it owes is **probed**: a ``Discover`` on its own subject
with a reply subject of its own, again every 200 ms while it stays silent.
NATS answers "no responders" (status 503) at once when nobody listens there:
the server is gone. Its own ``Nodes`` answer means it is alive. No answer
within the probe timeout also means gone.

Answers are routed by the last token of their subject: a 503 on the request
or its ``Discover`` (both on the broadcast subject) means no server serves the
namespace; a 503 on a probe, only that the probed server is gone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

from .errors import (
    IncompleteError,
    NoServersError,
    PayloadTooLargeError,
    ProtocolError,
    RequestTimeoutError,
    UnreachableError,
)
from .protocol import (
    Request,
    RequestType,
    Response,
    ResponseType,
    Subjects,
    decode_response,
    new_id,
)
from .tracker import ACCEPT, Expect, Tracker

log = logging.getLogger("socketioxide_nats_emitter")

#: How long a request waits for a server's first answer before probing it.
PROBE_AFTER = 0.050
#: How often a server that stays silent (while answering probes) is probed again.
PROBE_AGAIN = 0.200
#: How often the request checks its probes.
TICK = 0.010
#: The most servers one request waits for (a forged Nodes answer naming
#: thousands of ids cannot make the emitter probe them all).
MAX_NODES = 4096
#: The most probes in flight at once.
MAX_PROBES = 256

_NO_RESPONDERS = "503"


class NoServers(Exception):
    """NATS reported that nobody listens on the broadcast subject."""


@dataclass
class Collected:
    """The answers to a request."""

    #: The servers that answered Discover (or a probe), in arrival order.
    nodes: List[str] = field(default_factory=list)
    #: The accepted answers to the request itself, in arrival order.
    responses: List[Response] = field(default_factory=list)


def _opens(expect: Expect, res: Response) -> bool:
    """Whether ``res`` is the first answer a server sends to a request expecting ``expect``."""
    if expect.acks:
        return res.type == ResponseType.ACK_COUNT
    return res.type == expect.kind


def _decode(token: str, payload: bytes) -> Optional[Response]:
    try:
        return decode_response(payload)
    except ProtocolError as e:
        log.warning("undecodable answer to %s dropped: %s", token, e)
        return None


class Round:
    """One request's state: whom it waits for and what came. No I/O, so the
    decisions are tested without a broker. Times are ``loop.time()`` seconds."""

    def __init__(
        self,
        me: str,
        discover_id: str,
        request_id: str,
        expect: Optional[Expect],
        started: float,
        probe_timeout: float,
    ) -> None:
        self.me = me
        self.discover_id = discover_id
        self.request_id = request_id
        self.started = started
        self.probe_timeout = probe_timeout
        #: Who answered Discover (or a probe): every server owes one Nodes.
        self.discovery = Tracker(Expect(ResponseType.NODES))
        #: Who answered the request; None for discovery alone.
        self.request: Optional[Tracker] = Tracker(expect) if expect is not None else None
        self.answered: List[str] = []
        self.responses: List[Response] = []
        #: Probes in flight: probe id -> (target, deadline).
        self.probes: Dict[str, Tuple[str, float]] = {}
        self.probing: Set[str] = set()
        self.probed_at: Dict[str, float] = {}
        self.overflow = False

    def expect(self, uid: str) -> None:
        """Wait for ``uid``'s answers too (nothing changes if it is tracked already)."""
        if uid == self.me or self.discovery.is_expected(uid):
            return
        if len(self.discovery) >= MAX_NODES:
            if not self.overflow:
                self.overflow = True
                log.warning(
                    "more than %d servers named: the others are not waited for", MAX_NODES
                )
            return
        self.discovery.expect(uid)
        if self.request is not None:
            self.request.expect(uid)

    def gone(self, uid: str, why: str) -> None:
        """A server stopped serving (or never served): stop waiting for it."""
        owed = self.discovery.gone(uid)
        if self.request is not None and self.request.gone(uid):
            owed = True
        if owed:
            log.debug("not waiting for server %s: %s", uid, why)

    def on_reply(self, token: str, no_responders: bool, payload: bytes) -> None:
        """An answer on the reply subject whose last token is ``token``.

        Raises :class:`NoServers` on a 503 for the Discover or the request."""
        is_request = token == self.request_id and self.request is not None
        if token == self.discover_id or is_request:
            if no_responders:
                raise NoServers()
            res = _decode(token, payload)
            if res is not None and res.origin != self.me:
                if is_request:
                    self._on_request_answer(res)
                else:
                    self._on_discover_answer(res)
            return
        if token not in self.probes:
            log.debug("answer to no pending request %s dropped", token)
            return
        self._on_probe_answer(token, no_responders, payload)

    def _on_discover_answer(self, res: Response) -> None:
        # Only a receiver of the Discover knows its reply subject.
        self.expect(res.origin)
        self._on_nodes(res)

    def _on_nodes(self, res: Response) -> None:
        if res.type != ResponseType.NODES:
            log.debug("answer of the wrong type from %s to a Discover dropped", res.origin)
            return
        if self.discovery.on_response(res) == ACCEPT:
            self.answered.append(res.origin)
        for uid in res.nodes or []:
            self.expect(uid)

    def _on_request_answer(self, res: Response) -> None:
        request = self.request
        if request is None:
            return
        # The first answer on the request's own reply subject proves its sender
        # serves the namespace (only a receiver of the request knows it).
        if _opens(request.expect_kind, res):
            self.expect(res.origin)
        verdict = request.on_response(res)
        if verdict == ACCEPT:
            self.responses.append(res)
        else:
            log.debug("answer from %s ignored: %s", res.origin, verdict.value)  # type: ignore[union-attr]

    def _on_probe_answer(self, probe_id: str, no_responders: bool, payload: bytes) -> None:
        target = self.probes[probe_id][0]
        if no_responders:
            self._end_probe(probe_id)
            self.gone(target, "nobody listens on its subject")
            return
        res = _decode(probe_id, payload)
        if res is None:
            return
        if res.origin == target and res.type == ResponseType.NODES:
            self._end_probe(probe_id)
            self._on_nodes(res)
        else:
            # Something else listens on the server's subject: only the server's
            # own answer counts, until the probe times out.
            log.debug("probe answer for %s from %s ignored", target, res.origin)

    def _end_probe(self, probe_id: str) -> None:
        p = self.probes.pop(probe_id, None)
        if p is not None:
            self.probing.discard(p[0])

    def unsent(self, probe_id: str) -> None:
        """A probe could not be published: it says nothing, try again later."""
        self._end_probe(probe_id)

    def due_probes(self, now: float) -> List[Tuple[str, str]]:
        """Time out the probes due, and pick the servers to probe now: those that
        owe something and have sent nothing of it, not probed within
        :data:`PROBE_AGAIN`. Returns (server, probe id) pairs, counted in flight."""
        expired = [(pid, t) for pid, (t, deadline) in self.probes.items() if deadline <= now]
        for pid, target in expired:
            self._end_probe(pid)
            self.gone(target, "it did not answer a liveness probe")
        if now < self.started + PROBE_AFTER:
            return []
        silent = self.discovery.owing()
        if self.request is not None:
            silent.extend(u for u in self.request.owing() if u not in silent)
        due: List[Tuple[str, str]] = []
        for uid in silent:
            is_silent = self.discovery.is_silent(uid) or (
                self.request is not None and self.request.is_silent(uid)
            )
            at = self.probed_at.get(uid)
            recent = at is not None and now - at < PROBE_AGAIN
            if not is_silent or recent or uid in self.probing:
                continue
            if len(self.probes) >= MAX_PROBES:
                break
            pid = new_id()
            self.probes[pid] = (uid, now + self.probe_timeout)
            self.probing.add(uid)
            self.probed_at[uid] = now
            due.append((uid, pid))
        return due

    def is_complete(self) -> bool:
        """Every server known answered in full, or is gone."""
        return (
            not self.discovery.is_empty()
            and self.discovery.is_complete()
            and (self.request is None or self.request.is_complete())
        )

    def finish(self, timeout: float, ns: str) -> Collected:
        """The answers, or the error: nobody answered, or live servers still owe."""
        if self.discovery.is_empty():
            raise RequestTimeoutError(ns, timeout)
        if self.request is not None:
            missing = self.request.owing()
            if missing:
                log.debug("request incomplete on %s: missing %s", ns, missing)
                raise IncompleteError(missing, timeout)
        return Collected(nodes=list(self.answered), responses=list(self.responses))


@dataclass
class Target:
    """Where a request goes, and how the emitter signs it."""

    nc: Any
    subjects: Subjects
    origin: str
    ns: str
    prefix: str
    probe_timeout: float


def check_size(nc: Any, payload: bytes) -> None:
    """Raise :class:`PayloadTooLargeError` if NATS would refuse ``payload``."""
    max_payload = getattr(nc, "max_payload", None)
    if isinstance(max_payload, int) and max_payload > 0 and len(payload) > max_payload:
        raise PayloadTooLargeError(len(payload), max_payload)


async def publish(nc: Any, subject: str, payload: bytes, reply: str = "") -> None:
    """Publish, with this package's errors."""
    check_size(nc, payload)
    try:
        await nc.publish(subject, payload, reply=reply)
    except Exception as e:  # noqa: BLE001 - nats-py raises several unrelated types
        # MaxPayloadError if the server's limit changed since check_size.
        if type(e).__name__ == "MaxPayloadError":
            raise PayloadTooLargeError(len(payload), getattr(nc, "max_payload", 0)) from e
        raise UnreachableError(f"publish to {subject}", e) from e


def _is_no_responders(msg: Any) -> bool:
    headers = getattr(msg, "headers", None)
    if not headers:
        return False
    return headers.get("Status") == _NO_RESPONDERS and not msg.data


async def request(
    t: Target,
    ask: Optional[Tuple[Request, Expect]],
    timeout: float,
) -> Collected:
    """Send ``ask`` (a request and what it expects from each server; None to only
    discover the servers) with a Discover, and collect the answers until every
    live server answered, or ``timeout`` passes.

    At the timeout a request still missing a live server's answer raises
    :class:`IncompleteError`; discovery alone returns the servers that answered.
    """
    nc = t.nc
    # A fresh requester id per request: its answers, and its probes' answers,
    # have subjects of their own.
    requester, discover_id, request_id = new_id(), new_id(), new_id()
    to = t.subjects.broadcast(t.origin)
    discover = Request(type=RequestType.DISCOVER, origin=t.origin, id=discover_id).encode()
    payload: Optional[bytes] = None
    expect: Optional[Expect] = None
    if ask is not None:
        req, expect = ask
        req.origin, req.id = t.origin, request_id
        payload = req.encode()
        # Checked before anything is published: a request too large to send
        # must not leave its Discover behind.
        check_size(nc, payload)

    inbox: Deque[Any] = collections.deque()
    arrived = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        inbox.append(msg)
        arrived.set()

    filt = t.subjects.reply_filter(requester)
    try:
        sub = await nc.subscribe(filt, cb=on_msg)
    except Exception as e:  # noqa: BLE001
        raise UnreachableError(f"subscribe to {filt}", e) from e
    try:
        await publish(nc, to, discover, reply=t.subjects.reply(requester, discover_id))
        if payload is not None:
            await publish(nc, to, payload, reply=t.subjects.reply(requester, request_id))

        loop = asyncio.get_running_loop()
        started = loop.time()
        rnd = Round(t.origin, discover_id, request_id, expect, started, t.probe_timeout)
        deadline = started + timeout
        next_tick = started + PROBE_AFTER
        while True:
            while inbox:
                msg = inbox.popleft()
                token = msg.subject.rsplit(".", 1)[-1]
                try:
                    rnd.on_reply(token, _is_no_responders(msg), msg.data)
                except NoServers:
                    raise NoServersError(t.ns, t.prefix) from None
            if rnd.is_complete():
                break
            now = loop.time()
            if now >= deadline:
                break
            if now >= next_tick:
                for target, pid in rnd.due_probes(now):
                    subject = t.subjects.node(target, t.origin)
                    probe = Request(type=RequestType.DISCOVER, origin=t.origin, id=pid).encode()
                    try:
                        await publish(nc, subject, probe, reply=t.subjects.reply(requester, pid))
                    except Exception as e:  # noqa: BLE001 - says nothing about the server
                        log.debug("cannot send a liveness probe to %s: %s", target, e)
                        rnd.unsent(pid)
                next_tick = loop.time() + TICK
                continue
            if nc.is_closed:
                raise UnreachableError("receive the servers' answers (the connection is closed)")
            arrived.clear()
            if inbox:
                continue
            try:
                await asyncio.wait_for(arrived.wait(), min(next_tick, deadline) - now)
            except asyncio.TimeoutError:
                pass
        return rnd.finish(timeout, t.ns)
    finally:
        try:
            await sub.unsubscribe()
        except Exception:  # noqa: BLE001 - the connection may be closed already
            pass


def merge_rooms(responses: List[Response]) -> List[str]:
    """The rooms in answers, merged and sorted."""
    rooms: Set[str] = set()
    for res in responses:
        rooms.update(res.rooms or [])
    return sorted(rooms)
