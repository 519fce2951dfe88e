"""Which servers still owe an answer to a request.

A Python port of ``socketioxide_nats_protocol::completion::Tracker``: each
expected server answers once (rooms, sockets, done, a reply, nodes), or, for a
broadcast with acks, with an ack count followed by that many acks. Everything
else is ignored: answers from servers not waited for, duplicates, a second ack
count, acks before the count or past it, answers of the wrong type. A forged
or replayed answer can neither complete a request early nor make it wait longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Dict, Iterable, List, Optional, Union

from .protocol import Response, ResponseType


class Ignored(Enum):
    """Why a response was ignored."""

    UNEXPECTED_NODE = "from a node the request does not wait for"
    DUPLICATE = "a duplicate of an answer already received"
    WRONG_KIND = "of a type the request does not expect"
    ACK_OUT_OF_COUNT = "an ack outside the node's ack count"


ACCEPT = "accept"
Verdict = Union[str, Ignored]


@dataclass(frozen=True)
class Expect:
    """What a request expects from each server: one answer of ``kind``, or
    (``kind`` None) an AckCount then that many Acks."""

    kind: Optional[ResponseType] = None

    @property
    def acks(self) -> bool:
        return self.kind is None


EXPECT_ACKS = Expect(None)


def expect_one(kind: ResponseType) -> Expect:
    return Expect(kind)


# Progress of one node: "waiting", an int (acks still due), "done", "gone".
_WAITING = "waiting"
_DONE = "done"
_GONE = "gone"


def _owes(progress: object) -> bool:
    return progress == _WAITING or isinstance(progress, int)


class Tracker:
    """The servers a request waits for, and what each still owes."""

    def __init__(self, expect: Expect, nodes: Iterable[str] = ()) -> None:
        self.expect_kind = expect
        self._nodes: Dict[str, object] = {}
        for uid in nodes:
            self.expect(uid)

    def expect(self, uid: str) -> None:
        """Also wait for ``uid``; nothing changes if it is tracked already."""
        self._nodes.setdefault(uid, _WAITING)

    def is_expected(self, uid: str) -> bool:
        return uid in self._nodes

    def on_response(self, res: Response) -> Verdict:
        """Count a response: :data:`ACCEPT` if it is an answer its sender still owed."""
        if res.origin not in self._nodes:
            return Ignored.UNEXPECTED_NODE
        progress = self._nodes[res.origin]
        if progress in (_DONE, _GONE):
            return Ignored.DUPLICATE
        kind = res.type
        if not self.expect_kind.acks:
            if progress == _WAITING and kind == self.expect_kind.kind:
                self._nodes[res.origin] = _DONE
                return ACCEPT
            return Ignored.WRONG_KIND
        if kind == ResponseType.ACK_COUNT:
            if progress != _WAITING:
                return Ignored.DUPLICATE
            count = res.count or 0
            self._nodes[res.origin] = _DONE if count == 0 else count
            return ACCEPT
        if kind == ResponseType.ACK:
            if not isinstance(progress, int) or isinstance(progress, bool):
                return Ignored.ACK_OUT_OF_COUNT
            self._nodes[res.origin] = _DONE if progress == 1 else progress - 1
            return ACCEPT
        return Ignored.WRONG_KIND

    def gone(self, uid: str) -> bool:
        """``uid`` left: stop waiting for it. Tells whether it still owed something."""
        if _owes(self._nodes.get(uid)):
            self._nodes[uid] = _GONE
            return True
        return False

    def is_complete(self) -> bool:
        """Whether every server answered in full or is gone."""
        return not any(_owes(p) for p in self._nodes.values())

    def owing(self) -> List[str]:
        """The servers that still owe something."""
        return [uid for uid, p in self._nodes.items() if _owes(p)]

    def is_silent(self, uid: str) -> bool:
        """Whether ``uid`` owes something and has sent nothing yet."""
        return self._nodes.get(uid) == _WAITING

    def __len__(self) -> int:
        return len(self._nodes)

    def is_empty(self) -> bool:
        return not self._nodes
