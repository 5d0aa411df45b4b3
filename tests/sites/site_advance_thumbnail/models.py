from django.db import models
from django_advance_thumbnail import AdvanceThumbnailField


class Photo(models.Model):  # configs/django-advance-thumbnail.toml
    image = models.ImageField(upload_to="images/")
    thumbnail = AdvanceThumbnailField(
        source_field="image", upload_to="thumbnails/", size=(300, 300), null=True, blank=True
    )
