"""S3D-G video backbone of MIL-NCE / HowTo100M (shared by VideoCLIP and COOT).

* :class:`S3D` / :class:`S3DConfig`: the network; ``S3D(...)(video)`` on ``(B, 3, T, H, W)`` in
  ``[0, 1]`` returns :class:`S3DOutput` (512-d ``video_embedding``, 1024-d ``mixed_5c``).
* :func:`convert_original_state_dict` (``convert.CONVERTERS["original"]``): ``s3d_howto100m.pth``
  keys -> :class:`S3D` keys.
* :mod:`.features`: the one S3D windowing, a whole video -> one feature per window (MMPT's rule by
  default, COOT's with :meth:`S3DWindowing.coot`): :class:`S3DWindowing`, :class:`S3DWindowingOptions`,
  :func:`frames_to_windows`, :func:`window_features`, :class:`S3DFeatureExtractor`, :func:`build_s3d`.
"""

from vtzoo.backbones.s3d.convert import convert_original_state_dict, is_original_s3d
from vtzoo.backbones.s3d.features import (
    EmptyVideoError,
    S3DFeatureExtractor,
    S3DFeatures,
    S3DWindowing,
    S3DWindowingOptions,
    build_s3d,
    frames_to_windows,
    window_features,
)
from vtzoo.backbones.s3d.model import S3D, S3DConfig, S3DOutput

__all__ = [
    "EmptyVideoError",
    "S3D",
    "S3DConfig",
    "S3DFeatureExtractor",
    "S3DFeatures",
    "S3DOutput",
    "S3DWindowing",
    "S3DWindowingOptions",
    "build_s3d",
    "convert_original_state_dict",
    "frames_to_windows",
    "is_original_s3d",
    "window_features",
]
