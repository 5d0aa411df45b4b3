from django.db import models


class Photo(models.Model):  # configs/django-sorl.toml
    image = models.ImageField(upload_to="images/")
