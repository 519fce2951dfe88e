"""Fixtures of the end-to-end suite (see cluster.py)."""

from __future__ import annotations

from typing import Any, Iterator, List

import nats
import pytest

from cluster import Client, Cluster
from socketioxide_nats_emitter import Emitter


@pytest.fixture(scope="session", params=["default", "msgpack"])
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Three nodes of one parser, shared by the tests of that parser."""
    c = Cluster(request.param)
    yield c
    c.stop()


@pytest.fixture
def fresh_cluster() -> Iterator[Cluster]:
    """Three nodes of their own, for tests that kill one."""
    c = Cluster("default")
    yield c
    c.stop()


@pytest.fixture
async def clients() -> Any:
    """Collects the clients a test connects, and disconnects them after it."""
    made: List[Client] = []
    yield made
    for c in made:
        await c.close()


@pytest.fixture
async def nc(cluster: Cluster) -> Any:
    """A nats-py connection to the cluster's nats-server."""
    conn = await nats.connect(cluster.nats.url, allow_reconnect=False)
    yield conn
    await conn.close()


@pytest.fixture
async def emitter(cluster: Cluster, nc: Any) -> Emitter:
    """An emitter of the cluster's parser."""
    return Emitter(nc, parser=cluster.parser)
