from django.db import models
from versatileimagefield.fields import PPOIField, VersatileImageField


class Photo(models.Model):  # configs/django-versatileimagefield.toml
    image = VersatileImageField(upload_to="images/", ppoi_field="image_ppoi")
    image_ppoi = PPOIField()
