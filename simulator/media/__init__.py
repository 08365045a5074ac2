"""Synthetic media, its analysis, and the media paths (see :mod:`simulator.media.paths`)."""

from typing import Final, Literal

__all__ = ["MEDIA_PATHS", "MediaPath"]

MediaPath = Literal["full", "passthrough", "lean"]
"""How a participant sends and receives media (light to import: the CLI offers the choices)."""
MEDIA_PATHS: Final[tuple[MediaPath, ...]] = ("full", "passthrough", "lean")
