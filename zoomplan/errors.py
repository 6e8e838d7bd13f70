"""One exception hierarchy for zoomplan.

Every message says what was asked, what was found and how to fix it, on one line, so the CLI can
print it as is and exit non-zero.
"""

from __future__ import annotations


class ZoomplanError(Exception):
    """Base class of every error zoomplan raises on purpose."""


class InputError(ZoomplanError):
    """A user-supplied file, path or value is missing, unreadable or malformed."""


class DatasetError(InputError):
    """A dataset root, split file or sample cannot be used."""


class CheckpointError(ZoomplanError):
    """A checkpoint is missing, tampered with, or does not match what was asked of it."""


class ConfigError(InputError):
    """A configuration file (TOML) or option value is invalid."""


class GeometryError(InputError):
    """An AOI or scene geometry cannot be used."""
