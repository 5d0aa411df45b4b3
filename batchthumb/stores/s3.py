"""S3 (and any S3-compatible endpoint) as a store, through one long-lived aioboto3 client.

The client's connection pool is sized to the requests in flight, retries use
botocore's standard mode (backoff with jitter; attempts configurable), and every
request that goes on the wire is counted in ``requests`` by operation.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import aioboto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from batchthumb.errors import CredentialsRefused, ObjectNotFound, SourceTooLarge, StoreError
from batchthumb.location import StoreLocation
from batchthumb.stores.base import (
    DELETE_BATCH,
    HEAD_BYTES,
    Admit,
    DeleteResult,
    ObjectInfo,
    SourceBytes,
    Version,
    check_key,
)

if TYPE_CHECKING:
    from batchthumb.models import StoreConfig

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# The credentials themselves were refused: no other request will fare better.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
    }
)

# botocore's DEBUG output includes signed headers; never let it through.
for _name in ("botocore", "aiobotocore", "boto3", "aioboto3", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class S3Store:
    """Objects under ``s3://bucket/prefix/``: ``open`` it, ``aclose`` it."""

    def __init__(self, config: StoreConfig, max_connections: int = 64) -> None:
        location = config.location
        if location.scheme != "s3":
            raise ValueError(f"S3Store needs an s3:// location, not {location.url}")
        self.location: StoreLocation = location
        self.bucket = location.root
        self.prefix = location.prefix
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        """Failed requests (after botocore's retries) by S3 error code or exception class."""
        self._config = config
        self._max_connections = max_connections
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def open(self) -> S3Store:
        config = self._config
        session = aioboto3.Session(
            aws_access_key_id=_secret(config.access_key_id),
            aws_secret_access_key=_secret(config.secret_access_key),
            aws_session_token=_secret(config.session_token),
            region_name=config.region,
        )
        boto_config = BotoConfig(
            max_pool_connections=self._max_connections,
            retries={"mode": "standard", "max_attempts": config.max_attempts},
            s3={"addressing_style": config.addressing_style},
            connect_timeout=config.timeout_s,
            read_timeout=config.timeout_s,
            request_checksum_calculation=config.checksums,
            response_checksum_validation=config.checksums,
        )
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=config.endpoint_url, config=boto_config)
        )
        self._client.meta.events.register("before-send.s3", self._count_request)
        return self

    def _count_request(self, event_name: str, **_: Any) -> None:
        # event_name is "before-send.s3.PutObject": one call per HTTP request, retries included.
        self.requests[event_name.rsplit(".", 1)[-1]] += 1

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    @contextmanager
    def _translated(self, operation: str, key: str) -> Iterator[None]:
        """botocore's errors, as ours: the one place they are mapped."""
        try:
            yield
        except (ClientError, BotoCoreError, OSError) as exc:
            where = f"s3://{self.bucket}/{self.prefix}{key}"
            if isinstance(exc, ClientError):
                error = exc.response.get("Error", {})
                code = error.get("Code", "?")
                self.errors[code] += 1
                if code in NOT_FOUND_CODES:
                    raise ObjectNotFound(f"{where}: no such object") from exc
                if code in CREDENTIAL_CODES:
                    raise CredentialsRefused(
                        f"{operation} {where}: {code}: the store refused the credentials "
                        f"(check access_key_id, secret_access_key and session_token)"
                    ) from exc
                raise StoreError(f"{operation} {where}: {code} {error.get('Message', '')}".rstrip()) from exc
            self.errors[type(exc).__name__] += 1
            raise StoreError(f"{operation} {where}: {exc}") from exc

    async def get(self, key: str, max_bytes: int | None = None, admit: Admit | None = None) -> SourceBytes:
        data, _ = await self.get_versioned(key, max_bytes, admit)
        return data

    async def get_versioned(
        self, key: str, max_bytes: int | None = None, admit: Admit | None = None
    ) -> tuple[SourceBytes, Version]:
        with self._translated("GET", key):
            response = await self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            length = response.get("ContentLength")
            version = _version(response)
            stream = response["Body"]  # reads by amounts; the response it wraps, only whole
            async with stream as body:
                if max_bytes is not None and length is not None and length > max_bytes:
                    raise SourceTooLarge(f"{length} bytes, more than the limit of {max_bytes}")
                if admit is None:
                    data: bytes = await body.read()
                    return data, version
                return await self._admitted(stream, length, admit), version

    async def version(self, key: str) -> Version | None:
        try:
            with self._translated("HEAD", key):
                response = await self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ObjectNotFound:
            return None
        return _version(response)

    @staticmethod
    async def _admitted(body: Any, length: int | None, admit: Admit) -> SourceBytes:
        """The body, read after ``admit`` let it be, into one buffer of its length (a join of
        the head and the rest would hold the source twice for a moment)."""
        head = bytearray()
        while len(head) < HEAD_BYTES and (chunk := await body.read(HEAD_BYTES - len(head))):
            head += chunk
        await admit(length if length is not None else len(head), bytes(head))
        if length is None or length < len(head):
            rest: bytes = await body.read()
            return bytes(head) + rest
        buffer = bytearray(length)
        view = memoryview(buffer)
        view[: len(head)] = head
        filled = len(head)
        while chunk := await body.read(1024 * 1024):
            if filled + len(chunk) > length:
                raise StoreError(f"the body ran past its Content-Length of {length} bytes")
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        if filled != length:
            raise StoreError(f"the body ended after {filled} of its {length} bytes")
        view.release()
        return buffer  # bytes-like: libvips and the process pool read it as they read bytes

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        with self._translated("PUT", key):
            await self._client.put_object(
                Bucket=self.bucket, Key=self._full(key), Body=data, ContentType=content_type
            )

    async def delete_many(self, keys: Sequence[str]) -> DeleteResult:
        if len(keys) > DELETE_BATCH:
            raise ValueError(f"at most {DELETE_BATCH} keys per delete")
        if not keys:
            return DeleteResult()
        objects = [{"Key": self._full(key)} for key in keys]
        with self._translated("DeleteObjects", keys[0]):
            response = await self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        result = DeleteResult()
        for error in response.get("Errors", []):
            key = error["Key"].removeprefix(self.prefix)
            result.errors[key] = f"{error.get('Code', '?')} {error.get('Message', '')}".rstrip()
        result.deleted = [key for key in keys if key not in result.errors]
        return result

    async def list_pages(self, prefix: str = "") -> AsyncIterator[list[ObjectInfo]]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._translated("LIST", prefix):
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                yield [
                    ObjectInfo(
                        item["Key"].removeprefix(self.prefix),
                        item["Size"],
                        item["LastModified"],
                        item.get("ETag", "").strip('"') or None,
                    )
                    for item in page.get("Contents", [])
                ]

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None


def _version(response: dict[str, Any]) -> Version:
    """An object's version as GET and HEAD give it: its ETag (which a replacement changes),
    else its length. Not both: a HEAD's Content-Length is not always the object's (a proxy
    may answer a HEAD with 0), the ETag is."""
    etag = str(response.get("ETag", "")).strip('"')
    length = response.get("ContentLength")
    tag = f"etag:{etag}" if etag else f"length:{length}"
    return Version(tag, size=length if isinstance(length, int) and length > 0 else None)


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())
