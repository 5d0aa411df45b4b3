"""The presets' spec hashes, object keys and metadata rows are those of the golden file.

``tests/golden/presets.json`` was written from the code before the library modules moved into
``batchthumb/django/`` (``python -m tests.golden --write``): a change here makes an existing
site's renditions stale or invisible to its library, so it must be intended and said so.
"""

from __future__ import annotations

import json

from tests.golden import GOLDEN, current


def test_spec_hashes_object_keys_and_metadata_rows_are_the_golden_ones() -> None:
    golden = json.loads(GOLDEN.read_text())
    now = current()
    assert sorted(now) == sorted(golden)
    for label in golden:
        assert now[label]["renditions"] == golden[label]["renditions"], label
        assert now[label]["metadata"] == golden[label]["metadata"], label
    assert sum(len(entry["renditions"]) for entry in golden.values()) >= 30
