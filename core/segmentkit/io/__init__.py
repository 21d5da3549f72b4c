"""Input pipeline: images (and, with the video extra, video frames)."""

from .image import DEFAULT_MAX_PIXELS, image_key, load_image
from .video import FrameSource, FrameStream, open_video

__all__ = ["DEFAULT_MAX_PIXELS", "FrameSource", "FrameStream", "image_key", "load_image", "open_video"]
