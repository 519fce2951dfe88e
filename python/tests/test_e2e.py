"""End to end: the emitter against three real socketioxide nodes (e2e-node) on a
real nats-server, observed through real python-socketio clients, for both
parsers (the ``cluster`` fixture is parametrized)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, List, Sequence, Tuple

import nats
import pytest

from cluster import Client, Cluster, NatsServer, unique
from socketioxide_nats_emitter import (
    AckError,
    AckTimeoutError,
    Emitter,
    IncompleteError,
    NoServersError,
    PayloadTooLargeError,
    ReplyError,
    ReservedEventError,
    SocketInfo,
)
from socketioxide_nats_emitter.protocol import (
    Request,
    RequestType,
    Response,
    ResponseType,
    SocketData,
    Subjects,
    decode_request,
    new_id,
)

Event = Tuple[str, List[Any]]


async def connect(
    cluster: Cluster,
    clients: List[Client],
    node: int,
    rooms: Sequence[str] = (),
    ns: str = "/",
    no_ack: bool = False,
) -> Client:
    c = Client(cluster.parser, no_ack=no_ack)
    clients.append(c)
    return await c.connect(cluster.nodes[node].port, ns=ns, rooms=tuple(rooms))


async def drain(emitter: Emitter, cs: Sequence[Client], ns: str = "/") -> List[List[Event]]:
    """Emit a sentinel to every socket of ``ns`` from the emitter, and return what
    each client received before it: requests from one sender on one subject are
    applied in order by every node, so this is everything the emitter's earlier
    operations delivered."""
    marker = unique("end")
    await emitter.emit(marker, namespace=ns)
    return list(await asyncio.gather(*(c.until(lambda e: e[0] == marker) for c in cs)))


# ----- emit -----


async def test_emit_reaches_every_socket_of_every_node(cluster, clients, emitter) -> None:
    cs = [await connect(cluster, clients, i % 3) for i in range(6)]
    await emitter.emit("news", "hello", 1, {"k": [True, None, 2.5]}, ["é😀"])
    for got in await drain(emitter, cs):
        assert got == [("news", ["hello", 1, {"k": [True, None, 2.5]}, ["é😀"]])]


async def test_emit_to_rooms_with_skip(cluster, clients, emitter) -> None:
    a, b, muted = unique("a"), unique("b"), unique("muted")
    c0 = await connect(cluster, clients, 0, [a])
    c1 = await connect(cluster, clients, 1, [a, b])
    c2 = await connect(cluster, clients, 2, [b, muted])
    c3 = await connect(cluster, clients, 0)
    await emitter.emit("to-a", to=a)
    await emitter.emit("to-a-b", to=[a, b])  # c1 is in both: reached once
    await emitter.emit("to-a-b-skip-muted", to=[a, b], skip=muted)
    await emitter.emit("all-skip-a", skip=[a])
    got = await drain(emitter, [c0, c1, c2, c3])
    names = [[e for e, _ in g] for g in got]
    assert names[0] == ["to-a", "to-a-b", "to-a-b-skip-muted"]
    assert names[1] == ["to-a", "to-a-b", "to-a-b-skip-muted"]
    assert names[2] == ["to-a-b", "all-skip-a"]
    assert names[3] == ["all-skip-a"]


async def test_emit_to_and_skip_socket_ids(cluster, clients, emitter) -> None:
    cs = [await connect(cluster, clients, i) for i in range(3)]
    await emitter.emit("just-you", "x", to=cs[2].sid)
    await emitter.emit("not-you", skip=cs[0].sid)
    await emitter.emit("you-two", to=[cs[0].sid, cs[1].sid])
    got = await drain(emitter, cs)
    assert got[0] == [("you-two", [])]
    assert got[1] == [("not-you", []), ("you-two", [])]
    assert got[2] == [("just-you", ["x"]), ("not-you", [])]


async def test_volatile_emit_reaches_ready_clients(cluster, clients, emitter) -> None:
    cs = [await connect(cluster, clients, i) for i in range(3)]
    await emitter.emit("position", 1.5, 2, volatile=True)
    # socketioxide writes volatile packets on their own channel, so they are not
    # ordered with the others: wait for the event itself, not a sentinel.
    for c in cs:
        assert await c.until(lambda e: e == ("position", [1.5, 2])) == []


async def test_binary_arguments_arrive_as_binary(cluster, clients, emitter) -> None:
    cs = [await connect(cluster, clients, i) for i in range(3)]
    blob = bytes(range(256)) * 3
    await emitter.emit("file", b"\x01\x02\x03", {"nested": [b"\xff\x00", "t"]}, "text", bytearray(blob))
    for got in await drain(emitter, cs):
        assert got == [("file", [b"\x01\x02\x03", {"nested": [b"\xff\x00", "t"]}, "text", blob])]
        assert all(isinstance(x, bytes) for x in (got[0][1][0], got[0][1][3]))


async def test_namespaces_are_separate(cluster, clients, emitter) -> None:
    root = [await connect(cluster, clients, i) for i in range(3)]
    custom = [await connect(cluster, clients, i, ns="/custom") for i in range(3)]
    await emitter.emit("for-custom", 1, namespace="/custom")
    await emitter.emit("for-root", 2, namespace="/")
    for got in await drain(emitter, custom, ns="/custom"):
        assert got == [("for-custom", [1])]
    for got in await drain(emitter, root):
        assert got == [("for-root", [2])]


async def test_reserved_events_are_rejected(cluster, clients, emitter) -> None:
    cs = [await connect(cluster, clients, i) for i in range(3)]
    for name in ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]:
        with pytest.raises(ReservedEventError, match=name):
            await emitter.emit(name, 1)
        with pytest.raises(ReservedEventError):
            await emitter.emit_with_ack(name, to=cs[0].sid)
    for got in await drain(emitter, cs):
        assert got == []


# ----- acks -----


async def test_emit_with_ack_collects_every_client_of_every_node(cluster, clients, emitter) -> None:
    room, other = unique("ask"), unique("other")
    acking = [await connect(cluster, clients, i % 3, [room]) for i in range(4)]
    silent = await connect(cluster, clients, 2, [room], no_ack=True)
    await connect(cluster, clients, 1, [other])

    started = time.monotonic()
    acks = await emitter.emit_with_ack("ask", 7, b"\x01", to=room, timeout=1.0)
    assert time.monotonic() - started < 2.5, "the ack timeout, not the request timeout"
    by_sid = dict(acks)
    assert set(by_sid) == {c.sid for c in acking} | {silent.sid}, "one entry per socket, once"
    assert len(acks) == 5
    for c in acking:
        assert by_sid[c.sid] == {"from": c.sid, "event": "ask", "args": [7, {"bytes": "01"}]}
    assert isinstance(by_sid[silent.sid], AckTimeoutError)
    assert not dict((a.sid, a) for a in acks)[silent.sid].ok


async def test_emit_with_ack_ends_as_soon_as_every_ack_is_in(cluster, clients, emitter) -> None:
    room = unique("quick")
    cs = [await connect(cluster, clients, i, [room]) for i in range(3)]
    started = time.monotonic()
    acks = await emitter.emit_with_ack("ping", to=room, timeout=5.0)
    assert time.monotonic() - started < 1.0, "not the ack timeout"
    assert sorted(a.sid for a in acks) == sorted(c.sid for c in cs)
    assert all(a.ok and a.result["event"] == "ping" for a in acks)
    assert await emitter.emit_with_ack("ping", to=unique("nobody-here")) == []


async def test_acks_carry_binary_and_several_values(cluster, clients, emitter) -> None:
    room = unique("echo")
    cs = [await connect(cluster, clients, i, [room]) for i in range(3)]
    acks = await emitter.emit_with_ack("echo", b"\x00\xff", {"k": [1, b"\x01"]}, to=room)
    assert sorted(sid for sid, _ in acks) == sorted(c.sid for c in cs)
    for _, result in acks:
        assert result == (b"\x00\xff", {"k": [1, b"\x01"]})
    acks = await emitter.emit_with_ack("echo", "one", to=cs[0].sid)
    assert acks == [(cs[0].sid, "one")]
    acks = await emitter.emit_with_ack("echo", to=cs[1].sid)
    assert acks == [(cs[1].sid, None)]


async def test_a_client_that_does_not_ack_times_out_alone(cluster, clients, emitter) -> None:
    room = unique("slow")
    ok = await connect(cluster, clients, 0, [room])
    silent = await connect(cluster, clients, 1, [room], no_ack=True)
    started = time.monotonic()
    acks = await emitter.emit_with_ack("question", "ready?", to=room, timeout=0.3)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2.0, elapsed
    results = dict(acks)
    assert results[ok.sid]["args"] == ["ready?"]
    assert isinstance(results[silent.sid], AckError)
    assert isinstance(results[silent.sid], AckTimeoutError)


# ----- sockets, rooms, servers -----


async def test_fetch_sockets(cluster, clients, emitter) -> None:
    room = unique("fetch")
    cs = [await connect(cluster, clients, i, [room]) for i in range(3)]
    cs.append(await connect(cluster, clients, 1, [room]))
    elsewhere = await connect(cluster, clients, 2, [room], ns="/custom")
    expected = {SocketInfo(c.sid, cluster.nodes[i].server_id, "/") for c, i in zip(cs, [0, 1, 2, 1])}

    assert set(await emitter.fetch_sockets(to=room)) == expected
    assert len(await emitter.fetch_sockets(to=room)) == 4
    everyone = await emitter.fetch_sockets()
    assert expected <= set(everyone)
    assert emitter.uid not in {s.server_id for s in everyone}
    assert set(await emitter.fetch_sockets(to=room, skip=cs[0].sid)) == expected - {
        SocketInfo(cs[0].sid, cluster.nodes[0].server_id, "/")
    }
    assert await emitter.fetch_sockets(to=room, namespace="/custom") == [
        SocketInfo(elsewhere.sid, cluster.nodes[2].server_id, "/custom")
    ]
    assert await emitter.fetch_sockets(to=unique("empty")) == []


async def test_rooms(cluster, clients, emitter) -> None:
    a, b = unique("ra"), unique("rb")
    c0 = await connect(cluster, clients, 0, [a])
    c1 = await connect(cluster, clients, 2, [a, b])
    every = await emitter.rooms()
    assert {a, b, c0.sid, c1.sid} <= set(every)
    assert every == sorted(every)
    assert await emitter.rooms(to=a) == sorted({a, b, c0.sid, c1.sid})
    assert await emitter.rooms(to=b) == sorted({a, b, c1.sid})
    assert await emitter.rooms(namespace="/custom", to=a) == []


async def test_server_count_and_the_emitter_is_never_a_server(cluster, clients, emitter, nc) -> None:
    assert await emitter.server_count() == 3
    assert sorted(await emitter.server_ids()) == sorted(cluster.server_ids)
    assert await emitter.server_count(namespace="/custom") == 3
    other = Emitter(nc, parser=cluster.parser)
    counts = await asyncio.gather(*(e.server_count() for e in [emitter, other] * 3))
    assert counts == [3] * 6
    await emitter.fetch_sockets()
    await other.rooms()
    # The nodes' own view: the emitters never joined the cluster.
    for i in range(3):
        ctl = await connect(cluster, clients, i)
        info = await ctl.op({"op": "info"})
        assert info["serverCount"] == 3
        assert info["serverId"] == cluster.nodes[i].server_id


async def test_enter_and_leave_rooms(cluster, clients, emitter) -> None:
    vip, team, extra = unique("vip"), unique("team"), unique("extra")
    cs = [await connect(cluster, clients, i, [team]) for i in range(3)]
    server = {c.sid: cluster.nodes[i].server_id for i, c in enumerate(cs)}

    await emitter.enter_room(vip, to=cs[1].sid)
    await emitter.emit("vip-news", to=vip)
    got = await drain(emitter, cs)
    assert [len(g) for g in got] == [0, 1, 0]
    assert await emitter.fetch_sockets(to=vip) == [SocketInfo(cs[1].sid, server[cs[1].sid], "/")]
    assert vip in await emitter.rooms()

    # Every socket of a room joins several rooms, except one.
    await emitter.enter_room([vip, extra], to=team, skip=cs[2].sid)
    assert {s.id for s in await emitter.fetch_sockets(to=extra)} == {cs[0].sid, cs[1].sid}
    assert {s.id for s in await emitter.fetch_sockets(to=vip)} == {cs[0].sid, cs[1].sid}

    await emitter.leave_room(vip, to=cs[1].sid)
    assert {s.id for s in await emitter.fetch_sockets(to=vip)} == {cs[0].sid}
    await emitter.leave_room([vip, extra])  # every socket of the namespace
    assert await emitter.fetch_sockets(to=vip) == []
    assert await emitter.fetch_sockets(to=extra) == []
    assert extra not in await emitter.rooms()
    await emitter.emit("vip-news", to=vip)
    assert all(g == [] for g in await drain(emitter, cs))


async def test_disconnect(cluster, clients, emitter) -> None:
    room = unique("kick")
    cs = [await connect(cluster, clients, i, [room]) for i in range(3)]
    await emitter.disconnect(to=cs[1].sid)
    await cs[1].until(lambda e: e[0] == "$disconnect")
    got = await drain(emitter, [cs[0], cs[2]])
    assert got == [[], []]
    assert {s.id for s in await emitter.fetch_sockets(to=room)} == {cs[0].sid, cs[2].sid}

    await emitter.disconnect(to=room)
    for c in (cs[0], cs[2]):
        await c.until(lambda e: e[0] == "$disconnect")
    assert await emitter.fetch_sockets(to=room) == []


# ----- server-side events -----


async def test_server_emit_reaches_every_node(cluster, clients, emitter) -> None:
    cs = [await connect(cluster, clients, i) for i in range(3)]
    await emitter.server_emit("relay", {"x": 1, "y": [1, "a"]})
    for c in cs:
        await c.until(
            lambda e: e == ("relayed", [{"data": {"x": 1, "y": [1, "a"]}, "from": emitter.uid}])
        )
    await emitter.server_emit("relay", 1, "two")  # several arguments: an array
    for c in cs:
        await c.until(lambda e: e[0] == "relayed" and e[1][0]["data"] == [1, "two"])

    replies = await emitter.server_emit_with_ack("relay", "hi")
    assert sorted(r.server_id for r in replies) == sorted(cluster.server_ids)
    assert all(r.ok and r.result == {"node": r.server_id} for r in replies)
    for c in cs:
        await c.until(lambda e: e[0] == "relayed" and e[1][0]["data"] == "hi")

    replies = await emitter.custom_request({"q": 1}, namespace="/custom")
    assert sorted(r.server_id for r in replies) == sorted(cluster.server_ids)
    assert all(r.result == {"node": r.server_id, "data": {"q": 1}} for r in replies)

    replies = await emitter.server_emit_with_ack("no-handler-here")
    assert len(replies) == 3 and all(isinstance(r.result, ReplyError) for r in replies)


# ----- failures -----


async def test_no_servers(cluster, emitter) -> None:
    for call in (
        emitter.fetch_sockets(namespace="/nobody"),
        emitter.rooms(namespace="/nobody"),
        emitter.server_count(namespace="/nobody"),
        emitter.emit_with_ack("x", namespace="/nobody"),
    ):
        started = time.monotonic()
        with pytest.raises(NoServersError, match="/nobody"):
            await call
        assert time.monotonic() - started < 1.0, "NATS says it at once"
    with pytest.raises(NoServersError):
        await Emitter(emitter.nc, prefix="other.prefix").server_count()
    # A plain emit expects no answer: nothing to report.
    await emitter.emit("into-the-void", namespace="/nobody")
    await emitter.flush()


async def test_payload_too_large(cluster, clients, emitter, nc) -> None:
    c = await connect(cluster, clients, 0)
    with pytest.raises(PayloadTooLargeError, match="max_payload"):
        await emitter.emit("big", b"\0" * nc.max_payload)
    with pytest.raises(PayloadTooLargeError):
        await emitter.emit_with_ack("big", "x" * nc.max_payload)
    assert await emitter.server_count() == 3, "nothing was left half-sent"
    assert await drain(emitter, [c]) == [[]]


async def test_a_killed_node_is_probed_not_waited_for(fresh_cluster, clients, caplog) -> None:
    cluster = fresh_cluster
    room = unique("crash")
    cs = [await connect(cluster, clients, i, [room]) for i in range(3)]
    nc = await nats.connect(cluster.nats.url, allow_reconnect=False)
    monitor = await nats.connect(cluster.nats.url, allow_reconnect=False)
    try:
        emitter = Emitter(nc, request_timeout=5.0, probe_timeout=0.5)
        assert await emitter.server_count() == 3
        dead = cluster.nodes[2]
        dead.kill()
        alive = {SocketInfo(c.sid, cluster.nodes[i].server_id, "/") for i, c in enumerate(cs[:2])}
        caplog.set_level(logging.DEBUG, logger="socketioxide_nats_emitter")

        # Something else listens on the dead node's subject: only the probe
        # timeout tells.
        sub = await monitor.subscribe("socket.io.>")
        await monitor.flush()
        started = time.monotonic()
        assert set(await emitter.fetch_sockets(to=room)) == alive
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 1.5, elapsed
        assert f"not waiting for server {dead.server_id}: it did not answer a liveness probe" in caplog.text
        await sub.unsubscribe()
        await monitor.flush()

        # Nobody listens there: NATS answers the probe with a 503 at once.
        caplog.clear()
        started = time.monotonic()
        acks = await emitter.emit_with_ack("still-there", to=room, timeout=5.0)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, elapsed
        assert sorted(a.sid for a in acks) == sorted(c.sid for c in cs[:2])
        assert f"not waiting for server {dead.server_id}: nobody listens on its subject" in caplog.text
        assert sorted(await emitter.server_ids()) == sorted(cluster.server_ids[:2])
    finally:
        await nc.close()
        await monitor.close()


@pytest.fixture(scope="module")
def lone_nats():
    server = NatsServer()
    yield server
    server.stop()


async def fake_node(nc: Any, ns: str, answer_requests: int) -> Tuple[str, Any]:
    """A stranger that passes for a live node of ``ns``: it answers Discover
    (and probes) with Nodes, and answers requests ``answer_requests`` times."""
    uid = new_id()
    subjects = Subjects("socket.io", ns)

    async def on_request(msg: Any) -> None:
        req = decode_request(msg.data)
        if req.type == RequestType.DISCOVER:
            await nc.publish(msg.reply, Response(ResponseType.NODES, uid, nodes=[]).encode())
        elif req.type == RequestType.FETCH_SOCKETS:
            sockets = [SocketData(new_id(), uid, ns)]
            for _ in range(answer_requests):
                res = Response(ResponseType.SOCKETS, uid, sockets=sockets)
                await nc.publish(msg.reply, res.encode())

    subs = [
        await nc.subscribe(subjects.broadcast("*"), cb=on_request),
        await nc.subscribe(subjects.node(uid, "*"), cb=on_request),
    ]
    await nc.flush()
    return uid, subs


async def test_a_live_server_that_does_not_answer_makes_the_request_incomplete(lone_nats) -> None:
    nc = await nats.connect(lone_nats.url, allow_reconnect=False)
    try:
        uid, _ = await fake_node(nc, "/fake", answer_requests=0)
        emitter = Emitter(nc, request_timeout=0.6)
        assert await emitter.server_ids(namespace="/fake") == [uid]
        started = time.monotonic()
        with pytest.raises(IncompleteError) as err:
            await emitter.fetch_sockets(namespace="/fake")
        assert 0.6 <= time.monotonic() - started < 1.2
        assert err.value.missing == [uid]
        assert uid in str(err.value)

        other, _ = await fake_node(nc, "/twice", answer_requests=2)
        sockets = await emitter.fetch_sockets(namespace="/twice")
        assert [s.server_id for s in sockets] == [other], "a duplicate answer is counted once"
    finally:
        await nc.close()


async def test_the_emitter_sends_no_hello_or_heartbeat(cluster, nc, emitter) -> None:
    seen: List[Request] = []

    async def watch(msg: Any) -> None:
        seen.append(decode_request(msg.data))

    sub = await nc.subscribe("socket.io.*.b." + emitter.uid, cb=watch)
    await nc.flush()
    await emitter.server_count()
    await emitter.fetch_sockets()
    await emitter.emit("x")
    await emitter.flush()
    await asyncio.sleep(0.05)
    await sub.unsubscribe()
    kinds = [r.type for r in seen]
    assert kinds == [
        RequestType.DISCOVER,
        RequestType.DISCOVER,
        RequestType.FETCH_SOCKETS,
        RequestType.BROADCAST,
    ]
    assert all(r.origin == emitter.uid for r in seen)
    assert len({r.id for r in seen if r.id}) == 3, "a fresh id per request"
