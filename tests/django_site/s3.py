"""The test sites' S3 storage (django-storages ``S3Storage``), from the environment: ``BT_S3_ENDPOINT``,
``BT_S3_BUCKET``, ``BT_S3_LOCATION`` (and ``BT_S3_ACCESS_KEY``, ``BT_S3_SECRET_KEY``)."""

from __future__ import annotations

import os
from typing import Any


def s3_storage(**options: Any) -> dict[str, Any]:
    """A ``STORAGES`` entry for the tests' S3 server; ``options`` add to django-storages' own."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["BT_S3_BUCKET"],
            "location": os.environ.get("BT_S3_LOCATION", ""),
            "endpoint_url": os.environ["BT_S3_ENDPOINT"],
            "region_name": "us-east-1",
            # the S3 server checks signatures: the tests' keys, or the bench's
            "access_key": os.environ.get("BT_S3_ACCESS_KEY", "testing"),
            "secret_key": os.environ.get("BT_S3_SECRET_KEY", "testing-secret-key"),
            "addressing_style": "path",
            "querystring_auth": False,
            **options,
        },
    }
