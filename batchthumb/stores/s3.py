"""S3 (and any S3-compatible endpoint) as a store, through one long-lived aioboto3 client.

The client's connection pool is sized to the requests in flight, retries use
botocore's standard mode (backoff with jitter; attempts configurable), and every
request that goes on the wire is counted in ``requests`` by operation.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from batchthumb.config import StoreConfig
from batchthumb.errors import ImageTooLarge, ObjectNotFound, StoreError
from batchthumb.stores.base import DELETE_BATCH, DeleteResult, ObjectInfo, check_key
from batchthumb.stores.location import StoreLocation

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

# botocore's DEBUG output includes signed headers; never let it through.
for _name in ("botocore", "aiobotocore", "boto3", "aioboto3", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class S3Store:
    """Objects under ``s3://bucket/prefix/``. Use as an async context manager, or call ``open``."""

    def __init__(self, config: StoreConfig, max_connections: int = 64) -> None:
        location = config.location
        if location.scheme != "s3":
            raise ValueError(f"S3Store needs an s3:// location, not {location.url}")
        self.location: StoreLocation = location
        self.bucket = location.root
        self.prefix = location.prefix
        self.requests: Counter[str] = Counter()
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

    async def __aenter__(self) -> S3Store:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _count_request(self, event_name: str, **_: Any) -> None:
        # event_name is "before-send.s3.PutObject": one call per HTTP request, retries included.
        self.requests[event_name.rsplit(".", 1)[-1]] += 1

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _error(self, operation: str, key: str, exc: Exception) -> StoreError:
        where = f"s3://{self.bucket}/{self.prefix}{key}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code", "?")
            if code in NOT_FOUND_CODES:
                return ObjectNotFound(f"{where}: no such object")
            return StoreError(f"{operation} {where}: {code} {error.get('Message', '')}".rstrip())
        return StoreError(f"{operation} {where}: {exc}")

    async def get(self, key: str, max_bytes: int | None = None) -> bytes:
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=self._full(key))
            length = response.get("ContentLength")
            async with response["Body"] as body:
                if max_bytes is not None and length is not None and length > max_bytes:
                    raise ImageTooLarge(f"{length} bytes, more than the limit of {max_bytes}")
                data: bytes = await body.read()
                return data
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("GET", key, exc) from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=self._full(key), Body=data, ContentType=content_type
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("PUT", key, exc) from exc

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            response = await self._client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            error = self._error("HEAD", key, exc)
            if isinstance(error, ObjectNotFound):
                return None
            raise error from exc
        except (BotoCoreError, OSError) as exc:
            raise self._error("HEAD", key, exc) from exc
        return ObjectInfo(key, response["ContentLength"], response["LastModified"])

    async def delete_many(self, keys: Sequence[str]) -> DeleteResult:
        if len(keys) > DELETE_BATCH:
            raise ValueError(f"at most {DELETE_BATCH} keys per delete")
        if not keys:
            return DeleteResult()
        objects = [{"Key": self._full(key)} for key in keys]
        try:
            response = await self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("DeleteObjects", keys[0], exc) from exc
        result = DeleteResult()
        for error in response.get("Errors", []):
            key = error["Key"].removeprefix(self.prefix)
            result.errors[key] = f"{error.get('Code', '?')} {error.get('Message', '')}".rstrip()
        result.deleted = [key for key in keys if key not in result.errors]
        return result

    async def list_pages(self, prefix: str = "") -> AsyncIterator[list[ObjectInfo]]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                yield [
                    ObjectInfo(item["Key"].removeprefix(self.prefix), item["Size"], item["LastModified"])
                    for item in page.get("Contents", [])
                ]
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("LIST", prefix, exc) from exc

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())
