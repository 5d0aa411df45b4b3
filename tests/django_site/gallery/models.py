"""``gallery.Photo``: one image field and a rendition of each library (as in the example configs)."""

from __future__ import annotations

from django.db import models
from django_advance_thumbnail import AdvanceThumbnailField
from imagekit.models import ImageSpecField
from imagekit.processors import Anchor, ResizeToFill, ResizeToFit, Thumbnail
from versatileimagefield.fields import PPOIField, VersatileImageField


class Photo(models.Model):
    image = VersatileImageField(upload_to="images/", max_length=255, ppoi_field="image_ppoi")
    image_ppoi = PPOIField()
    thumbnail = AdvanceThumbnailField(
        source_field="image", upload_to="thumbnails/", size=(300, 300), null=True, blank=True
    )
    fit = ImageSpecField(
        source="image", processors=[ResizeToFit(300, 300)], format="JPEG", options={"quality": 85}
    )
    fill = ImageSpecField(
        source="image", processors=[ResizeToFill(300, 300)], format="JPEG", options={"quality": 85}
    )

    # anchors other than the centre, and Thumbnail's default smart (entropy) crop
    corner = ImageSpecField(
        source="image", processors=[ResizeToFill(200, 150, anchor=Anchor.TOP_LEFT)], format="JPEG"
    )
    spot = ImageSpecField(source="image", processors=[ResizeToFill(250, 100, anchor=(0.3, 0.8))])
    smart = ImageSpecField(source="image", processors=[Thumbnail(160, 160)], format="PNG")

    class Meta:
        app_label = "gallery"
        db_table = "gallery_photo"
        managed = False
