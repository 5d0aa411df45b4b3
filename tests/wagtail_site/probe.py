"""The Wagtail site, driven by the tests: ``python -m tests.wagtail_site.probe MODE`` with JSON on stdin.

- ``setup``: migrate, then upload each image as an editor would (``{"images": [{"path", "name",
  "focal": [x, y, width, height] | null}]}``); prints the images' rows.
- ``serve``: every image's renditions asked as pages ask for them (``{% image %}`` per spec,
  ``{% srcset_image %}`` and ``{% picture %}`` with brace sets, ``get_rendition(s)``,
  ``prefetch_renditions``; with ``"tags_only"`` the ``{% image %}`` tags alone), counting
  renders (``Filter.run``) and storage calls; prints the counts and the rendition rows the
  lookups returned.
- ``make``: Wagtail renders every spec of every image itself; prints the rows it wrote.
- ``bulk``: Wagtail's own bulk path, ``get_renditions(*specs)`` per image (the bench's baseline).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.wagtail_site.settings")

import django

django.setup()

from django.core.files.images import ImageFile  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.template import Context, Template  # noqa: E402
from wagtail.images import get_image_model  # noqa: E402
from wagtail.images.models import Filter  # noqa: E402

Image = get_image_model()
CALLS: Counter[str] = Counter()


def count_calls() -> None:
    """Renders and storage calls, counted from here on."""
    run = Filter.run

    def counted_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        CALLS["render"] += 1
        return run(self, *args, **kwargs)

    Filter.run = counted_run  # type: ignore[method-assign]
    default_storage.exists  # noqa: B018 (the lazy storage made now, its class below)
    wrapped = default_storage._wrapped
    connection = getattr(wrapped, "connection", None)
    if connection is not None:  # S3: every HTTP request the storage's client sends

        def sent(**kwargs: Any) -> None:
            CALLS["s3_request"] += 1

        connection.meta.client.meta.events.register("before-send", sent)
    storage = type(wrapped)
    for name in ("exists", "open", "save", "size", "delete", "listdir"):
        method = getattr(storage, name)

        def counted(self: Any, *args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            CALLS[_name] += 1
            return _method(self, *args, **kwargs)

        setattr(storage, name, counted)


def rows(image: Any) -> list[list[Any]]:
    return [
        [r.filter_spec, r.file.name, r.width, r.height, r.focal_point_key]
        for r in image.renditions.order_by("filter_spec", "focal_point_key")
    ]


def setup(request: dict[str, Any]) -> dict[str, Any]:
    call_command("migrate", verbosity=0, interactive=False)
    made = []
    for entry in request["images"]:
        with open(entry["path"], "rb") as handle:
            image = Image(title=entry["name"], file=ImageFile(handle, name=entry["name"]))
            if entry.get("focal"):
                x, y, width, height = entry["focal"]
                image.focal_point_x, image.focal_point_y = x, y
                image.focal_point_width, image.focal_point_height = width, height
            image.save()
        made.append({"id": image.id, "file": image.file.name, "width": image.width, "height": image.height})
    return {"images": made}


def serve(request: dict[str, Any]) -> dict[str, Any]:
    specs: list[str] = request["specs"]
    images = list(Image.objects.order_by("id"))
    count_calls()
    found: dict[str, dict[str, list[Any]]] = {}
    html: dict[str, list[str]] = {}
    for image in images:
        mine = found.setdefault(str(image.id), {})
        pages = html.setdefault(str(image.id), [])
        for spec in specs:
            tag = Template(
                "{% load wagtailimages_tags %}{% image img " + spec.replace("|", " ") + " as r %}"
                "{{ r.url }} {{ r.width }} {{ r.height }}"
            )
            url, width, height = tag.render(Context({"img": image})).split()
            mine[spec] = [url, int(width), int(height)]
        if request.get("tags_only"):
            continue
        for tag in request.get("tags", []):
            pages.append(Template("{% load wagtailimages_tags %}" + tag).render(Context({"img": image})))
        for rendition in image.get_renditions(*specs).values():
            mine.setdefault("get_renditions", []).append(rendition.file.name)
        mine["get_rendition"] = [image.get_rendition(specs[0]).file.name]
    prefetched = Image.objects.prefetch_renditions(*specs).order_by("id")
    for image in prefetched if not request.get("tags_only") else ():
        for spec in specs:
            found[str(image.id)].setdefault("prefetched", []).append(image.get_rendition(spec).file.name)
    return {"calls": dict(CALLS), "found": found, "html": html, "rows": {str(i.id): rows(i) for i in images}}


def make(request: dict[str, Any]) -> dict[str, Any]:
    specs: list[str] = request["specs"]
    images = list(Image.objects.order_by("id"))
    count_calls()
    for image in images:
        for spec in specs:
            image.get_rendition(spec)
    return {"calls": dict(CALLS), "rows": {str(i.id): rows(i) for i in images}}


def bulk(request: dict[str, Any]) -> dict[str, Any]:
    """What sites write today for a bulk backfill (wagtail#4895): every image's renditions,
    ``get_renditions(*specs)`` (one read of the source, renders on Wagtail's threads)."""
    specs: list[str] = request["specs"]
    started = time.perf_counter()
    for image in Image.objects.order_by("id").iterator():
        image.get_renditions(*specs)
    return {"seconds": time.perf_counter() - started}


def main() -> None:
    mode = sys.argv[1]
    request = json.loads(sys.stdin.read() or "{}")
    result = {"setup": setup, "serve": serve, "make": make, "bulk": bulk}[mode](request)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
