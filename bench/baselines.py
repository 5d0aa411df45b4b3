"""The baselines, in their own module so that worker processes can import them."""

from __future__ import annotations

from pathlib import Path

RENDITIONS = {
    "large": {"mode": "fit", "width": 1200, "height": 1200, "format": "jpeg", "quality": 82},
    "medium": {"mode": "fit", "width": 600, "height": 600, "format": "webp", "quality": 80},
    "small": {"mode": "fit", "width": 300, "height": 300, "format": "jpeg", "quality": 80},
}


def pyvips_one(args: tuple[str, str]) -> int:
    """Decode once with shrink-on-load, derive the three renditions, write them."""
    import pyvips

    source, out = args
    base = pyvips.Image.thumbnail(source, 1200, height=1200, size="down").copy_memory()
    written = 0
    for name, spec in RENDITIONS.items():
        image = base.thumbnail_image(spec["width"], height=spec["height"], size="down")
        suffix = ".jpg" if spec["format"] == "jpeg" else ".webp"
        target = f"{out}/{name}-{Path(source).name}{suffix}"
        image.write_to_file(target, Q=spec["quality"], keep="none")
        written += 1
    return written


def pillow_one(args: tuple[str, str]) -> int:
    """The Django way: each rendition opens and decodes the source on its own (sorl, VIF)."""
    from PIL import Image, ImageOps

    source, out = args
    written = 0
    for name, spec in RENDITIONS.items():
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((spec["width"], spec["height"]), Image.Resampling.LANCZOS)
            fmt = "JPEG" if spec["format"] == "jpeg" else "WEBP"
            image.save(f"{out}/{name}-{Path(source).name}.{fmt.lower()}", fmt, quality=spec["quality"])
        written += 1
    return written


def init_worker() -> None:
    import pyvips

    pyvips.cache_set_max(0)
