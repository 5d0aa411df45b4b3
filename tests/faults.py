"""A fault-injecting HTTP proxy for the tests: sits in front of moto's S3 server.

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

Schedule = Callable[[int, str, str], str | None]

ERRORS = {
    "503": ("SlowDown", "Please reduce your request rate."),
    "500": ("InternalError", "We encountered an internal error. Please try again."),
}
HOP_BY_HOP = {"transfer-encoding", "content-encoding", "content-length", "connection", "keep-alive"}


class FaultProxy:
    def __init__(self, upstream: str, schedule: Schedule, stall_s: float = 3.0) -> None:
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
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=upstream.status, body=payload, headers=out)
