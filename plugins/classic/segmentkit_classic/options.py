"""Per-model options of ``classic`` (pydantic only: imported at discovery)."""

from __future__ import annotations

from pydantic import Field
from segmentkit import ModelOptions


class ClassicOptions(ModelOptions):
    """Knobs of the GrabCut prompter and the Felzenszwalb segmenter."""

    max_side: int = Field(
        default=256, ge=16, le=4096,
        description="Longest side (pixels) the algorithms run at; larger inputs are downscaled.",
    )
    iterations: int = Field(default=5, ge=1, le=50, description="GrabCut iterations per candidate mask.")
    region_scale: float = Field(
        default=300.0, gt=0, description="Felzenszwalb scale: larger values give fewer, bigger regions."
    )
    region_sigma: float = Field(
        default=0.3, ge=0, le=5, description="Gaussian smoothing (pixels) before finding regions."
    )
    min_region: float = Field(
        default=0.002, ge=0, lt=1, description="Smallest automatic region kept, as a fraction of the image."
    )
    max_regions: int = Field(default=64, ge=1, le=1024, description="Most automatic masks returned.")
    seed: int = Field(default=0, ge=0, description="Seed of OpenCV's random generator (GrabCut's k-means).")
