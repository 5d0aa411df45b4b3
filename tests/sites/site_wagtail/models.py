"""The stock image model (``wagtailimages_image``): this app has templates only."""
