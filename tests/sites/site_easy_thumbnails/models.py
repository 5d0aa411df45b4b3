from django.db import models


class Photo(models.Model):  # configs/django-easy-thumbnails.toml
    image = models.ImageField(upload_to="images/")
