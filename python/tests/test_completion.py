"""The completion rules without a broker: the tracker (a port of the protocol
crate's tests) and one request's round (a port of the Rust emitter's)."""

from __future__ import annotations

from typing import List, Tuple

import pytest

from socketioxide_nats_emitter.errors import IncompleteError, RequestTimeoutError
from socketioxide_nats_emitter.protocol import (
    Response,
    ResponseType,
    SocketData,
    TextValue,
    new_id,
)
from socketioxide_nats_emitter.request import (
    MAX_NODES,
    MAX_PROBES,
    PROBE_AFTER,
    PROBE_AGAIN,
    NoServers,
    Round,
)
from socketioxide_nats_emitter.tracker import ACCEPT, EXPECT_ACKS, Expect, Ignored, Tracker

R = ResponseType


def res(origin: str, kind: ResponseType, **fields) -> Response:
    return Response(type=kind, origin=origin, **fields)


def ack(origin: str) -> Response:
    return res(origin, R.ACK, sid=new_id(), ok=True, value=TextValue("[1]"))


# ----- Tracker -----


def test_one_answer_per_node_counted_once() -> None:
    a, b = new_id(), new_id()
    t = Tracker(Expect(R.SOCKETS), [a, b])
    assert t.on_response(res(a, R.SOCKETS, sockets=[])) == ACCEPT
    assert t.on_response(res(a, R.SOCKETS, sockets=[])) == Ignored.DUPLICATE
    assert t.owing() == [b]
    assert t.on_response(res(b, R.ROOMS, rooms=[])) == Ignored.WRONG_KIND
    assert t.is_silent(b)
    assert t.on_response(res(b, R.SOCKETS, sockets=[])) == ACCEPT
    assert t.is_complete()


def test_answers_from_unexpected_nodes_are_ignored() -> None:
    a = new_id()
    t = Tracker(Expect(R.DONE), [a])
    assert t.on_response(res(new_id(), R.DONE, count=1)) == Ignored.UNEXPECTED_NODE
    assert not t.is_complete()
    assert len(t) == 1, "a stranger is not added"


def test_acks_follow_their_count() -> None:
    a, b = new_id(), new_id()
    t = Tracker(EXPECT_ACKS, [a, b])
    assert t.on_response(ack(a)) == Ignored.ACK_OUT_OF_COUNT, "an ack before the count"
    assert t.on_response(res(a, R.ACK_COUNT, count=2)) == ACCEPT
    assert t.on_response(res(a, R.ACK_COUNT, count=5)) == Ignored.DUPLICATE
    assert t.on_response(ack(a)) == ACCEPT
    assert t.on_response(ack(a)) == ACCEPT
    assert t.on_response(ack(a)) == Ignored.DUPLICATE, "past the count"
    assert t.on_response(res(a, R.ACK_COUNT, count=1)) == Ignored.DUPLICATE
    assert t.owing() == [b]
    assert t.on_response(res(b, R.ACK_COUNT, count=0)) == ACCEPT
    assert t.is_complete()


def test_a_huge_count_is_only_a_wait_bounded_by_the_deadline() -> None:
    a = new_id()
    t = Tracker(EXPECT_ACKS, [a])
    t.on_response(res(a, R.ACK_COUNT, count=2**32 - 1))
    t.on_response(ack(a))
    assert not t.is_complete()
    assert t.gone(a)
    assert t.is_complete()


def test_gone_nodes_complete_and_stay_gone() -> None:
    a, b = new_id(), new_id()
    t = Tracker(Expect(R.ROOMS), [a, b])
    assert t.gone(a)
    assert not t.gone(a)
    assert t.on_response(res(a, R.ROOMS, rooms=[])) == Ignored.DUPLICATE
    t.expect(a)
    assert not t.is_silent(a), "expect does not revive a gone node"
    assert not t.gone(new_id())
    t.on_response(res(b, R.ROOMS, rooms=[]))
    assert t.is_complete()
    assert not t.gone(b), "b had answered"


def test_nobody_to_wait_for_is_complete() -> None:
    t = Tracker(EXPECT_ACKS)
    assert t.is_complete() and t.is_empty()


# ----- Round -----

PROBE_TIMEOUT = 0.5
AT = 1000.0


class Fixture:
    def __init__(self, expect=Expect(R.SOCKETS)) -> None:
        self.me, self.discover, self.request = new_id(), new_id(), new_id()
        self.round = Round(self.me, self.discover, self.request, expect, AT, PROBE_TIMEOUT)

    def discover_answer(self, origin: str, named: List[str]) -> None:
        payload = res(origin, R.NODES, nodes=named).encode()
        self.round.on_reply(self.discover, False, payload)

    def request_answer(self, origin: str) -> None:
        payload = res(origin, R.SOCKETS, sockets=[SocketData(new_id(), origin, "/")]).encode()
        self.round.on_reply(self.request, False, payload)

    def probes_at(self, after: float) -> List[Tuple[str, str]]:
        return self.round.due_probes(AT + after)


def test_a_named_server_found_gone_by_its_probe_completes_the_request() -> None:
    f = Fixture()
    a, crashed = new_id(), new_id()
    f.discover_answer(a, [crashed])
    f.request_answer(a)
    assert not f.round.is_complete(), "the named server is waited for"
    assert f.probes_at(0.010) == [], "not probed before PROBE_AFTER"
    due = f.probes_at(PROBE_AFTER)
    assert [d[0] for d in due] == [crashed], "only the silent server is probed"
    assert f.probes_at(PROBE_AFTER * 2) == [], "one probe at a time"
    f.round.on_reply(due[0][1], True, b"")  # a 503 on a probe is not "no servers"
    assert f.round.is_complete()
    collected = f.round.finish(2.0, "/")
    assert collected.nodes == [a]
    assert len(collected.responses) == 1


def test_a_503_on_the_discover_or_the_request_means_no_servers() -> None:
    f = Fixture()
    with pytest.raises(NoServers):
        f.round.on_reply(f.discover, True, b"")
    with pytest.raises(NoServers):
        f.round.on_reply(f.request, True, b"")
    f.round.on_reply("SomeOtherReq0000", True, b"")  # a 503 for nothing pending: dropped


def test_an_answer_before_the_servers_discover_answer_is_kept() -> None:
    f = Fixture()
    b = new_id()
    f.request_answer(b)
    assert not f.round.is_complete(), "its Discover answer, which may name others, is due"
    f.discover_answer(b, [])
    assert f.round.is_complete()
    collected = f.round.finish(2.0, "/")
    assert [r.origin for r in collected.responses] == [b]


def test_only_the_probed_servers_own_answer_proves_it_alive() -> None:
    f = Fixture()
    a, stuck = new_id(), new_id()
    f.discover_answer(a, [stuck])
    f.request_answer(a)
    probe = f.probes_at(PROBE_AFTER)[0][1]
    # A monitor on the whole prefix answering in the server's place.
    f.round.on_reply(probe, False, res(new_id(), R.NODES, nodes=[]).encode())
    assert stuck in f.round.probing, "still in flight"
    f.round.on_reply(probe, False, res(stuck, R.NODES, nodes=[]).encode())
    assert stuck not in f.round.probing, "answered: alive"
    assert not f.round.is_complete(), "alive, so its answer is still due"
    assert f.probes_at(PROBE_AFTER + PROBE_AGAIN / 2) == [], "not probed again at once"
    again = f.probes_at(PROBE_AFTER + PROBE_AGAIN)
    assert len(again) == 1, "probed again while silent"
    assert again[0][1] != probe, "each probe has its own request id"
    with pytest.raises(IncompleteError) as err:
        f.round.finish(2.0, "/")
    assert err.value.missing == [stuck]
    assert stuck in str(err.value)


def test_a_probe_without_an_answer_within_the_probe_timeout_means_gone() -> None:
    f = Fixture()
    a, silent = new_id(), new_id()
    f.discover_answer(a, [silent])
    f.request_answer(a)
    assert len(f.probes_at(PROBE_AFTER)) == 1
    assert f.probes_at(PROBE_AFTER + PROBE_TIMEOUT / 2) == []
    assert not f.round.is_complete()
    f.probes_at(PROBE_AFTER + PROBE_TIMEOUT)
    assert f.round.is_complete()


def test_the_emitter_never_waits_for_itself() -> None:
    f = Fixture()
    a = new_id()
    f.discover_answer(a, [f.me])
    f.request_answer(a)
    assert f.round.is_complete()
    f.discover_answer(f.me, [])
    assert len(f.round.discovery) == 1


def test_discovery_alone_returns_who_answered() -> None:
    f = Fixture(expect=None)
    a, b, stuck = new_id(), new_id(), new_id()
    f.discover_answer(a, [b, stuck])
    f.discover_answer(b, [a])
    assert not f.round.is_complete()
    due = f.probes_at(PROBE_AFTER)
    assert [d[0] for d in due] == [stuck]
    # A server answering its probe answered the Discover too.
    f.round.on_reply(due[0][1], False, res(stuck, R.NODES, nodes=[]).encode())
    assert f.round.is_complete()
    assert f.round.finish(2.0, "/").nodes == [a, b, stuck]


def test_acks_are_waited_for_in_full_and_strangers_ignored() -> None:
    f = Fixture(expect=EXPECT_ACKS)
    a = new_id()
    f.discover_answer(a, [])
    stranger_ack = res(new_id(), R.ACK, sid=new_id(), ok=True, value=TextValue("[1]"))
    f.round.on_reply(f.request, False, stranger_ack.encode())
    f.round.on_reply(f.request, False, res(a, R.ACK_COUNT, count=2).encode())
    f.round.on_reply(f.request, False, ack(a).encode())
    assert not f.round.is_complete()
    f.round.on_reply(f.request, False, ack(a).encode())
    f.round.on_reply(f.request, False, ack(a).encode())  # past the count
    assert f.round.is_complete()
    assert [r.type for r in f.round.finish(2.0, "/").responses] == [R.ACK_COUNT, R.ACK, R.ACK]


def test_undecodable_answers_are_dropped() -> None:
    f = Fixture()
    f.round.on_reply(f.discover, False, b"\xc1garbage")
    f.round.on_reply(f.request, False, b"\x94\x02\x06")  # another version, truncated
    assert f.round.discovery.is_empty()


def test_nothing_answered_is_a_timeout() -> None:
    f = Fixture()
    assert not f.round.is_complete()
    with pytest.raises(RequestTimeoutError):
        f.round.finish(1.0, "/chat")


def test_names_past_the_bound_are_not_waited_for() -> None:
    f = Fixture(expect=None)
    many = [new_id() for _ in range(MAX_NODES + 10)]
    f.discover_answer(new_id(), many)
    assert len(f.round.discovery) == MAX_NODES
    assert len(f.probes_at(PROBE_AFTER)) == MAX_PROBES, "probes in flight are bounded too"
