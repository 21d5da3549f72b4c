"""Input pipeline: images (and, with the video extra, video frames)."""

from .image import DEFAULT_MAX_PIXELS, image_key, load_image

__all__ = ["DEFAULT_MAX_PIXELS", "image_key", "load_image"]
