"""zoomplan: plan which high-resolution satellite imagery to buy from free low-resolution scenes.

The method is PatchDrop (Uzkent & Ermon, CVPR 2020). Public API re-exported here; importing zoomplan
has no side effects.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zoomplan")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from zoomplan.errors import CheckpointError, ConfigError, DatasetError, GeometryError, InputError, ZoomplanError

__all__ = [
    "__version__",
    "ZoomplanError",
    "InputError",
    "DatasetError",
    "CheckpointError",
    "ConfigError",
    "GeometryError",
]
