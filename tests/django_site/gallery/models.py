"""``gallery.Photo``: one image field and a rendition of each library (as in the example configs)."""

from __future__ import annotations

from django.db import models
from django_advance_thumbnail import AdvanceThumbnailField
from imagekit.models import ImageSpecField
from imagekit.processors import ResizeToFill, ResizeToFit
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

    class Meta:
        app_label = "gallery"
        db_table = "gallery_photo"
        managed = False
