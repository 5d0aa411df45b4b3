"""A srcset from one decode: 5 widths x 3 formats (AVIF, WebP, JPEG) per source.

batchthumb's ``render`` (one decode, shrink-on-load to the largest width, every variant
derived from it) against the way a srcset is filled today: one ``thumbnail`` call per
variant, each decoding the source again (libvips' own ``thumbnail_buffer``, which already
shrinks on load: the strongest per-call baseline there is). Same images, same threads, same
run; medians of the repeats, and their ratio.

Measured twice: with AVIF, whose encode dominates (one AVIF of 1920 px costs more than the
whole decode), and with WebP and JPEG alone, where the decode is a larger share.

    python -m bench.srcset            # 6 sources
    python -m bench.srcset --quick    # 2 sources
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyvips

from batchthumb import render as rendering
from batchthumb.config import RenditionConfig
from batchthumb.samples import sample_bytes
from batchthumb.specs import specs_for
from bench.__main__ import cores, machine

WIDTHS = (320, 640, 960, 1280, 1920)
FORMAT_SETS = {"avif+webp+jpeg": ("avif", "webp", "jpeg"), "webp+jpeg": ("webp", "jpeg")}
QUALITY = 75
CORPUS = [
    # (count, count --quick, width, height, format)
    (4, 1, 4000, 3000, "jpeg"),
    (2, 1, 2400, 1600, "png"),
]


def corpus(quick: bool) -> list[bytes]:
    images = []
    for full, small, width, height, fmt in CORPUS:
        images += [sample_bytes(width, height, fmt, seed=index) for index in range(small if quick else full)]
    return images


def separate_calls(data: bytes, formats: tuple[str, ...]) -> int:
    """A thumbnail call per variant: a decode each, then the encode."""
    written = 0
    for width in WIDTHS:
        for fmt in formats:
            image = pyvips.Image.thumbnail_buffer(data, width, height=rendering.UNBOUNDED, size="down")
            if fmt == "jpeg":
                encoded = image.jpegsave_buffer(Q=QUALITY, keep="none")
            elif fmt == "webp":
                encoded = image.webpsave_buffer(Q=QUALITY, keep="none")
            else:
                encoded = image.heifsave_buffer(Q=QUALITY, compression="av1", keep="none")
            written += len(encoded) > 0
    return written


def one_decode(data: bytes, formats: tuple[str, ...]) -> int:
    variants = specs_for({"srcset": RenditionConfig(widths=WIDTHS, formats=formats, quality=QUALITY)})  # type: ignore[arg-type]
    return len(rendering.render(data, variants, 10**9))


def timed(function: Any, images: list[bytes], formats: tuple[str, ...], threads: int) -> float:
    with ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda data: function(data, formats), images))
        elapsed = time.perf_counter() - started
    assert all(count == len(WIDTHS) * len(formats) for count in results)
    return elapsed


def compare(images: list[bytes], formats: tuple[str, ...], threads: int, repeats: int) -> dict[str, Any]:
    ours, baseline = [], []
    for _ in range(repeats):  # interleaved, so that a busy moment costs both
        baseline.append(timed(separate_calls, images, formats, threads))
        ours.append(timed(one_decode, images, formats, threads))
    ours_s, baseline_s = statistics.median(ours), statistics.median(baseline)
    return {
        "variants_per_source": len(WIDTHS) * len(formats),
        "one_decode_s": [round(value, 3) for value in ours],
        "separate_calls_s": [round(value, 3) for value in baseline],
        "one_decode_sources_per_s": round(len(images) / ours_s, 3),
        "separate_calls_sources_per_s": round(len(images) / baseline_s, 3),
        "ratio": round(baseline_s / ours_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 3)
    rendering.configure(threads=1)
    threads = cores() + 1  # render_workers = "auto" with threads
    images = corpus(args.quick)
    print(f"srcset bench: {len(images)} sources, {len(WIDTHS)} widths, {threads} threads")
    timed(one_decode, images[:1], ("webp",), 1)  # warm libvips' codecs before either clock
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sources": len(images),
        "widths": list(WIDTHS),
        "threads": threads,
        "repeats": repeats,
    }
    for name, formats in FORMAT_SETS.items():
        result[name] = compare(images, formats, threads, repeats)
        figures = result[name]
        print(
            f"{name}: one decode {figures['one_decode_sources_per_s']} sources/s, "
            f"{figures['variants_per_source']} thumbnail calls {figures['separate_calls_sources_per_s']} "
            f"sources/s: {figures['ratio']}x"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = f"srcset-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}{'-quick' if args.quick else ''}.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"results in {out / name}")


if __name__ == "__main__":
    main()
