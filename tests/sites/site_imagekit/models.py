import os

from django.db import models
from imagekit.models import ImageSpecField
from imagekit.processors import ResizeToFill, ResizeToFit


class Photo(models.Model):  # configs/django-imagekit.toml
    image = models.ImageField(upload_to="images/")
    fit = ImageSpecField(
        source="image", processors=[ResizeToFit(300, 300)], format="JPEG", options={"quality": 85}
    )
    fill = ImageSpecField(
        # BT_FILL_WIDTH: the site after a change of the processor's argument
        source="image",
        processors=[ResizeToFill(int(os.environ.get("BT_FILL_WIDTH", "300")), 300)],
        format="JPEG",
        options={"quality": 85},
    )
    if os.environ.get("BT_ADJUST"):  # a processor batchthumb does not render
        from pilkit.processors import Adjust

        toned = ImageSpecField(source="image", processors=[Adjust(contrast=1.2)], format="JPEG")
