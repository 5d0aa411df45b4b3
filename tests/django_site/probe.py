"""Ask the libraries for every photo's renditions, as a page would; print JSON on stdout.

    python -m tests.django_site.probe serve   # what a page does: names, URLs, existence checks
    python -m tests.django_site.probe make    # let the libraries make their renditions themselves

    python -m tests.django_site.probe sorl    # sorl-thumbnail's get_thumbnail and tag (BT_SORL)
    python -m tests.django_site.probe easy    # easy-thumbnails' aliases and filter (BT_EASY)
    python -m tests.django_site.probe command migrate thumbnail
    python -m tests.django_site.probe live sorl 30   # a live site for 30 s (pages and an admin)

``BT_ONLY_IDS=1,3`` limits it to those photos. ``bulk LIBRARY`` times the library's own bulk
path (``generate_thumbnails``, the versatileimagefield warmer, ``generateimages``, a
``get_thumbnail`` loop for sorl, an alias loop for easy-thumbnails).

Prints ``{"photos": {id: {rendition: name}}, "calls": {operation: count}, "save_calls": ...}``:
the storage calls of the page reads, then those of saving each photo (``serve`` only).
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_site.settings")

import django

django.setup()

from tests.django_site.gallery.models import Photo  # noqa: E402
from tests.django_site.storage import CALLS, count_calls  # noqa: E402

count_calls()


def selected_photos() -> list[Photo]:
    """Every photo, by id; only those in ``BT_ONLY_IDS`` when it is set."""
    only = {int(pk) for pk in os.environ.get("BT_ONLY_IDS", "").split(",") if pk}
    return [photo for photo in Photo.objects.order_by("id") if not only or photo.pk in only]


def bulk(library: str) -> None:
    """The library's own bulk path over every photo, timed (the bench's baseline)."""
    import time

    from django.core.management import call_command

    started = time.perf_counter()
    quiet = io.StringIO()
    if library == "django_advance_thumbnail":
        call_command("generate_thumbnails", model="gallery.Photo", stdout=quiet)
    elif library == "versatileimagefield":
        from versatileimagefield.image_warmer import VersatileImageFieldWarmer

        warmer = VersatileImageFieldWarmer(
            instance_or_queryset=Photo.objects.all(),
            rendition_key_set=[("thumb", "thumbnail__300x300"), ("crop", "crop__300x300")],
            image_attr="image",
        )
        _, failed = warmer.warm()
        assert not failed, failed
    elif library == "sorl":  # no bulk command: the get_thumbnail loop a warm-up script runs
        from sorl.thumbnail import get_thumbnail

        wanted = json.loads(os.environ["BT_SORL"])
        for photo in Photo.objects.order_by("id"):
            for _, geometry, options in wanted:
                get_thumbnail(photo.image, geometry, **options)
    elif library == "easy_thumbnails":  # no command for aliases: the loop a warm-up script runs
        from easy_thumbnails.files import get_thumbnailer

        aliases = [name for name, _ in json.loads(os.environ["BT_EASY"])]
        for photo in Photo.objects.order_by("id"):
            for alias in aliases:
                get_thumbnailer(photo.image)[alias]
    else:
        call_command("generateimages", "gallery:photo:fit", "gallery:photo:fill", stdout=quiet)
    print(json.dumps({"seconds": time.perf_counter() - started, "calls": dict(CALLS)}))


def sorl(mode: str) -> None:
    """``get_thumbnail`` and the ``{% thumbnail %}`` tag for every photo and every geometry in
    ``BT_SORL`` (JSON ``[[name, geometry, options], ...]``): on a page (``sorl``), or on an
    empty key value store, where sorl makes them itself (``sorl-make``)."""
    from django.template import Context, Template
    from sorl.thumbnail import get_thumbnail

    wanted = json.loads(os.environ["BT_SORL"])
    tag = Template(
        "{% load sorl_thumbnail %}{% thumbnail photo.image geometry quality=85 as im %}"
        "{{ im.name }} {{ im.width }} {{ im.height }}{% endthumbnail %}"
    )
    photos: dict[int, dict[str, list[Any]]] = {}
    for photo in selected_photos():
        found: dict[str, list[Any]] = {}
        for name, geometry, options in wanted:
            thumbnail = get_thumbnail(photo.image, geometry, **options)
            found[name] = [thumbnail.name, thumbnail.width, thumbnail.height]
        if mode == "sorl":  # the template tag, as a page writes it (the first geometry's options)
            found["tag"] = tag.render(Context({"photo": photo, "geometry": wanted[0][1]})).split()
        photos[photo.pk] = found
    print(json.dumps({"photos": photos, "calls": dict(CALLS)}))


def easy() -> None:
    """``get_thumbnailer(photo.image)[alias]`` and the ``thumbnail_url`` filter for every photo
    and every alias in ``BT_EASY``: [name, width, height] each, and the thumbnails easy-thumbnails
    made (``created``: it renders and saves whatever it does not find current)."""
    from django.template import Context, Template
    from easy_thumbnails.files import get_thumbnailer
    from easy_thumbnails.signals import thumbnail_created

    created: list[str] = []
    thumbnail_created.connect(lambda sender, **kwargs: created.append(sender.name), weak=False)
    aliases = [name for name, _ in json.loads(os.environ["BT_EASY"])]
    url = Template("{% load easy_thumbnails_tags %}{{ photo.image|thumbnail_url:alias }}")
    photos: dict[int, dict[str, list[Any]]] = {}
    for photo in selected_photos():
        found: dict[str, list[Any]] = {}
        for alias in aliases:
            thumbnail = get_thumbnailer(photo.image)[alias]
            found[alias] = [thumbnail.name, thumbnail.width, thumbnail.height]
        # the filter, as a template writes it (the first alias)
        found["url"] = [url.render(Context({"photo": photo, "alias": aliases[0]}))]
        photos[photo.pk] = found
    print(json.dumps({"photos": photos, "calls": dict(CALLS), "created": created}))


def live(library: str, seconds: float) -> None:
    """A live site for ``seconds``: three threads serving pages (the library renders what it does
    not find, as on a page view), one admin uploading, replacing photos in place and deleting
    them, as a site does beside a batchthumb run. Prints what the admin did, and the errors
    of page views (a photo deleted under a page is the site's own race: counted apart)."""
    import random
    import threading
    import time

    from django.db import connection

    from batchthumb.samples import sample_bytes

    media = os.environ["BT_MEDIA_ROOT"]
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    # The site alone must be right, so that what goes wrong is batchthumb's: sorl names a
    # thumbnail by its source's name, so a page rendering a photo while the admin replaces it
    # in place records the old picture under the name (sorl's own race, seen here without
    # batchthumb). A photo's page views and its replacement take turns.
    photo_locks: dict[str, threading.Lock] = {}

    def photo_lock(name: str) -> threading.Lock:
        with lock:
            return photo_locks.setdefault(name, threading.Lock())

    actions: list[list[Any]] = []
    errors: list[str] = []
    vanished: list[str] = []
    views = [0]

    if library == "sorl":
        from sorl.thumbnail import default, get_thumbnail
        from sorl.thumbnail.images import ImageFile

        wanted = json.loads(os.environ["BT_SORL"])

        def view(photo: Photo) -> None:
            for _, geometry, options in wanted:
                get_thumbnail(photo.image, geometry, **options)

        def forget(photo: Photo) -> None:  # what the site does when a photo changes or goes
            default.kvstore.delete_thumbnails(ImageFile(photo.image))
    else:
        from easy_thumbnails.files import get_thumbnailer

        aliases = [name for name, _ in json.loads(os.environ["BT_EASY"])]

        def view(photo: Photo) -> None:
            for alias in aliases:
                get_thumbnailer(photo.image)[alias]

        def forget(photo: Photo) -> None:
            get_thumbnailer(photo.image).delete_thumbnails()

    def pages(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            while time.monotonic() < stop:
                photos = list(Photo.objects.order_by("id"))
                for photo in rnd.sample(photos, min(4, len(photos))):
                    try:
                        with photo_lock(photo.image.name):
                            view(photo)
                        with lock:
                            views[0] += 1
                    except Exception as error:  # the site's own races, sorted below
                        gone = not Photo.objects.filter(pk=photo.pk, image=photo.image.name).exists()
                        with lock:
                            (vanished if gone or not os.path.exists(photo.image.path) else errors).append(
                                f"{photo.image.name}: {type(error).__name__}: {error}"
                            )
        finally:
            connection.close()

    admin_errors: list[str] = []

    def admin(seed: int) -> None:
        rnd = random.Random(seed)
        count = 0
        try:
            while time.monotonic() < stop:
                time.sleep(0.4)
                try:
                    count = act(rnd, seed, count)
                except Exception as error:  # reported, not a silent end of the admin
                    import traceback

                    admin_errors.append(f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
        finally:
            connection.close()

    def act(rnd: random.Random, seed: int, count: int) -> int:
        """One admin action: an upload, an in-place replacement or a delete."""
        photos = list(Photo.objects.order_by("id"))
        action = rnd.choice(["upload", "replace", "replace", "delete"])
        count += 1
        if action == "upload" or len(photos) < 4:
            name = f"images/live-{seed}-{count}.jpg"
            path = os.path.join(media, name)
            with open(path + ".part", "wb") as handle:
                handle.write(sample_bytes(rnd.choice([640, 480]), 360, "jpeg", seed=1000 + count))
            os.replace(path + ".part", path)
            Photo.objects.bulk_create([Photo(image=name)])  # no save signal: no other library
            actions.append(["upload", name])
        elif action == "replace":  # in place: same name, a new picture of another shape
            photo = rnd.choice(photos)
            path = photo.image.path
            width, height = rnd.choice([(500, 900), (900, 500), (700, 700)])
            with open(path + ".part", "wb") as handle:
                handle.write(sample_bytes(width, height, "jpeg", seed=2000 + count))
            with photo_lock(photo.image.name):
                os.replace(path + ".part", path)
                forget(photo)
            actions.append(["replace", photo.image.name, width, height])
        else:
            photo = rnd.choice(photos)
            with photo_lock(photo.image.name):
                forget(photo)
                os.remove(photo.image.path)
                photo.delete()
            actions.append(["delete", photo.image.name])
        return count

    threads = [threading.Thread(target=pages, args=(seed,)) for seed in range(3)]
    threads.append(threading.Thread(target=admin, args=(7,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(
        json.dumps(
            {
                "actions": actions,
                "errors": errors,
                "vanished": vanished,
                "views": views[0],
                "admin_errors": admin_errors,
            }
        )
    )


def command(name: str, *args: str) -> None:
    """A management command (``migrate thumbnail``, ``thumbnail cleanup``); prints its storage calls."""
    from django.core.management import call_command

    call_command(name, *args, verbosity=0)
    print(json.dumps({"calls": dict(CALLS)}))


def main() -> None:
    mode = sys.argv[1]
    if mode == "bulk":
        bulk(sys.argv[2])
        return
    if mode in ("sorl", "sorl-make"):
        sorl(mode)
        return
    if mode == "easy":
        easy()
        return
    if mode == "command":
        command(*sys.argv[2:])
        return
    if mode == "live":
        live(sys.argv[2], float(sys.argv[3]))
        return
    photos: dict[int, dict[str, str | None]] = {}
    for photo in selected_photos():
        if mode == "make":
            field = Photo._meta.get_field("thumbnail")
            photo._generating_thumbnail = True  # what generate_thumbnails does
            field._generate_thumbnail_file(photo, photo.image)
            photo._generating_thumbnail = False
        names: dict[str, str | None] = {
            "advance": photo.thumbnail.name or None,
            "versatile_thumbnail": photo.image.thumbnail["300x300"].name,
            "versatile_crop": photo.image.crop["300x300"].name,
            "imagekit_fit": photo.fit.name,
            "imagekit_fill": photo.fill.name,
            "imagekit_corner": photo.corner.name,
            "imagekit_spot": photo.spot.name,
            "imagekit_smart": photo.smart.name,
        }
        # the URLs a template renders; imagekit's JustInTime strategy makes a missing file here
        urls = [
            photo.image.thumbnail["300x300"].url,
            photo.image.crop["300x300"].url,
            photo.fit.url,
            photo.fill.url,
            photo.corner.url,
            photo.spot.url,
            photo.smart.url,
        ]
        if photo.thumbnail.name:
            urls.append(photo.thumbnail.url)
        base = os.environ.get("BT_S3_ENDPOINT", "/media/")
        assert all(url.startswith(base) for url in urls), urls
        photos[photo.pk] = names
    page_calls = dict(CALLS)
    CALLS.clear()
    if mode == "serve":
        for photo in Photo.objects.order_by("id"):
            photo.save()  # the field's post_save: regenerates unless the stored name matches the source
            photo.refresh_from_db()
            photos[photo.pk]["advance_after_save"] = photo.thumbnail.name or None
    print(json.dumps({"photos": photos, "calls": page_calls, "save_calls": dict(CALLS)}))


if __name__ == "__main__":
    main()
