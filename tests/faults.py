"""A fault-injecting HTTP proxy for the tests: sits in front of the S3 server.

Requests go on as they came (path, query and ``Host`` unchanged), so their signatures hold.

``schedule(n, method, path)`` decides for the n-th request (from 1) whether to pass it on
or to answer with a fault: ``"503"`` (SlowDown), ``"500"`` (InternalError), ``"reset"``
(the connection is dropped without an answer) or ``"timeout"`` (no answer for
``stall_s``). ``injected`` counts the faults by kind. Runs in its own thread and loop,
bound to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable

import aiohttp
from aiohttp import web
from yarl import URL

Schedule = Callable[[int, str, str], str | None]

ERRORS = {
    "503": ("SlowDown", "Please reduce your request rate."),
    "500": ("InternalError", "We encountered an internal error. Please try again."),
}
HOP_BY_HOP = {"transfer-encoding", "content-encoding", "content-length", "connection", "keep-alive"}


class FaultProxy:
    def __init__(
        self, upstream: str, schedule: Schedule, stall_s: float = 3.0, gate: threading.Event | None = None
    ) -> None:
        self.gate = gate
        """While set, requests pass; while clear, they wait (a test holds a run mid-way)."""
        self.upstream = upstream.rstrip("/")
        self.schedule = schedule
        self.stall_s = stall_s
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stopped is not None
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with aiohttp.ClientSession(auto_decompress=False) as self._session:
            self._ready.set()
            await self._stopped.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = await request.read()
        if self.gate is not None:
            await asyncio.to_thread(self.gate.wait)
        fault = self.schedule(self.requests, request.method, request.path)
        if fault is not None:
            self.injected[fault] += 1
        if fault in ERRORS:
            code, message = ERRORS[fault]
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
            )
            return web.Response(status=int(fault), body=xml.encode(), content_type="application/xml")
        if fault == "reset":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # nothing is answered on a dropped connection
        if fault == "timeout":
            await asyncio.sleep(self.stall_s)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.request(
            request.method, URL(self.upstream + request.raw_path, encoded=True), headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=upstream.status, body=payload, headers=out)


class CuttableTcpProxy:
    """A TCP proxy in front of Postgres whose ``cut()`` drops every connection open through it.

    The upstream is a ``(host, port)`` or the path of a Unix socket. New connections are
    accepted after a cut, as after a server restart or a network blip.
    """

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream
        self.port = 0
        self.cuts = 0
        self.connections_cut = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._client_writers: set[asyncio.StreamWriter] = set()
        self._armed: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="pg-proxy", daemon=True)

    def __enter__(self) -> CuttableTcpProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("postgres proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._stopped is not None
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)

    def cut(self) -> None:
        """Drop every open connection the next time its client sends a statement.

        The statement is lost with the connection, as when a server restarts mid-query:
        the client sees its query fail, not merely an idle connection gone.
        """
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        self._armed.update(self._client_writers)
        self.cuts += 1

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        server.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if isinstance(self.upstream, str):
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.upstream)
        else:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        self._writers.update({client_writer, upstream_writer})
        self._client_writers.add(client_writer)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    if client_writer in self._armed and writer is upstream_writer:
                        self._armed.discard(client_writer)
                        self.connections_cut += 1
                        client_writer.transport.abort()  # type: ignore[attr-defined]
                        upstream_writer.transport.abort()  # type: ignore[attr-defined]
                        return
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()
                self._writers.discard(writer)
                self._client_writers.discard(writer)

        await asyncio.gather(pump(client_reader, upstream_writer), pump(upstream_reader, client_writer))
