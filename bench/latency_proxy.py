"""A TCP proxy that adds a fixed delay to every HTTP request, as real S3 has.

Real S3 answers a small PUT in tens of milliseconds; moto on loopback answers in
one or two. The proxy sits in front of moto and holds each request's first bytes
for ``delay_s`` before passing them on. A request is told apart from the rest of
the previous one's body by a pause: bytes that arrive after the connection was
quiet for ``gap_s`` start a new request. Responses pass through untouched.

Run it as its own process (``python -m bench.latency_proxy --upstream-port P``,
or :func:`start`): real network latency costs the client no CPU, and a proxy in
the client's own process would take the client's GIL to copy bytes. Bound to
127.0.0.1 only; it prints its port and runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import threading
import time


class LatencyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, delay_s: float = 0.030, gap_s: float = 0.002):
        self.upstream = (upstream_host, upstream_port)
        self.delay_s = delay_s
        self.gap_s = gap_s
        self.port = 0
        self.requests_delayed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("latency proxy did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            self._loop.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pump(client_reader, upstream_writer, delay=True),
            self._pump(upstream_reader, client_writer, delay=False),
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: bool) -> None:
        last = 0.0
        try:
            while data := await reader.read(65536):
                now = time.monotonic()
                if delay and now - last > self.gap_s:
                    self.requests_delayed += 1
                    await asyncio.sleep(self.delay_s)
                last = time.monotonic()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def start(upstream_port: int, delay_s: float) -> tuple[subprocess.Popen[str], str]:
    """The proxy in a child process; returns it and its endpoint URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.latency_proxy", "--upstream-port", str(upstream_port),
         "--delay-ms", str(delay_s * 1000)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description="a TCP proxy that delays each HTTP request")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=30.0)
    args = parser.parse_args()
    with LatencyProxy("127.0.0.1", args.upstream_port, delay_s=args.delay_ms / 1000) as proxy:
        print(proxy.port, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
