"""Drive a test site (``DJANGO_SETTINGS_MODULE=tests.sites.site_<library>.settings``); JSON in on stdin,
JSON out on the last line of stdout.

- ``setup``: ``migrate --run-syncdb`` (the site's tables and the library's), then one row per
  source name (``{"images": [["images/a.jpg", width, height], ...]}``; the files are in the
  storage already), saved raw so that no field makes a rendition on save; for Wagtail,
  ``{"admin": ["max-165x165", ...]}`` has Wagtail render those of the first image itself, as
  its admin does.
- ``serve``: every photo's renditions asked as the site's pages ask (its template, or the
  library's lookup), counting storage calls (and Wagtail's renders); prints what was served
  ([name, width, height]), the counts, the served names missing from the storage.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import django

django.setup()

from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.files.storage import default_storage  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402

from tests.django_site.storage import CALLS, count_calls  # noqa: E402

LIBRARY = settings.SETTINGS_MODULE.split(".")[-2].removeprefix("site_")
IMG = re.compile(r"<img\b[^>]*>")


def images_of(html: str) -> list[tuple[str, str, str]]:
    """(src, width, height) of each ``<img>``, its attributes in any order."""
    found = []
    for tag in IMG.findall(html):
        attributes = dict(re.findall(r'(\w+)="([^"]*)"', tag))
        found.append((attributes.get("src", ""), attributes.get("width", "0"), attributes.get("height", "0")))
    return found


def photo_model() -> Any:
    if LIBRARY == "wagtail":
        from wagtail.images import get_image_model

        return get_image_model()
    return apps.get_model("gallery", "Photo")


def setup(request: dict[str, Any]) -> dict[str, Any]:
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    model = photo_model()
    for name, width, height in request["images"]:
        if LIBRARY == "wagtail":
            model.objects.create(title=name, file=name, width=width, height=height)
            continue
        model(image=name).save_base(raw=True)  # raw: no field's pre_save (none makes a rendition)
    if request.get("admin"):
        image = model.objects.order_by("id").first()
        for spec in request["admin"]:
            image.get_rendition(spec)
    return {"ids": list(model.objects.order_by("id").values_list("id", flat=True))}


def name_of(url: str) -> str:
    return url.split("?")[0].split(settings.MEDIA_URL, 1)[-1].split("/media/", 1)[-1]


def serve(request: dict[str, Any]) -> dict[str, Any]:
    model = photo_model()
    photos = list(model.objects.order_by("id"))
    renders = [0]
    if LIBRARY == "wagtail":
        from wagtail.images.models import Filter

        run = Filter.run

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            renders[0] += 1
            return run(self, *args, **kwargs)

        Filter.run = counted  # type: ignore[method-assign]
    count_calls()
    served: dict[str, list[list[Any]]] = {}
    if LIBRARY in ("sorl", "wagtail"):  # the site's own template
        html = render_to_string("gallery/list.html", {"photos": photos, "images": photos})
        for url, width, height in images_of(html):
            served.setdefault("page", []).append([name_of(url), int(width), int(height)])
        if LIBRARY == "wagtail":
            for srcset in re.findall(r'srcset="([^"]+)"', html):
                for item in srcset.split(","):
                    served.setdefault("srcset", []).append([name_of(item.strip().split(" ")[0]), 0, 0])
    for photo in photos if LIBRARY not in ("sorl", "wagtail") else ():
        found = served.setdefault(str(photo.pk), [])
        if LIBRARY == "easy_thumbnails":
            from easy_thumbnails.files import get_thumbnailer

            for alias in settings.THUMBNAIL_ALIASES[""]:
                thumbnail = get_thumbnailer(photo.image)[alias]
                found.append([thumbnail.name, thumbnail.width, thumbnail.height])
        elif LIBRARY == "imagekit":
            for name in ("fit", "fill"):
                found.append([getattr(photo, name).name, 0, 0])
        elif LIBRARY == "versatileimagefield":
            for _, key in settings.VERSATILEIMAGEFIELD_RENDITION_KEY_SETS["photo"]:
                sizer, size = key.split("__")
                found.append([name_of(getattr(photo.image, sizer)[size].url), 0, 0])
        else:
            found.append([photo.thumbnail.name, 0, 0])
    calls = dict(CALLS)
    names = {entry[0] for entries in served.values() for entry in entries}
    missing = sorted(name for name in names if not name or not default_storage.exists(name))
    return {
        "served": served,
        "calls": calls,
        "renders": renders[0],
        "missing": missing,
        "names": sorted(names),
    }


def main() -> None:
    request = json.loads(sys.stdin.read() or "{}")
    print(json.dumps({"setup": setup, "serve": serve}[sys.argv[1]](request)))


if __name__ == "__main__":
    main()
