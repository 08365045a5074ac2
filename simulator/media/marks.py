"""Frame marks: a frame counter, a capture time and a source tag drawn into the picture.

The mark survives lossy VP8 because each bit is a 10×10-pixel block of black or
white in the luma plane, read back by averaging the block's centre. Three rows of 32
blocks carry ``counter`` (32 bits), ``capture_ms`` (32 bits, the loop's monotonic
clock in ms, wrapping) and ``tag`` (16 bits) with a CRC-16, so a damaged mark is
rejected, never misread.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["MARK_BYTES", "MARK_HEIGHT", "NO_CAPTURE_TIME", "Mark", "read_mark", "write_mark"]

BITS_PER_ROW: Final = 32
ROWS: Final = 3
BLACK: Final = 16
WHITE: Final = 235
MIN_WIDTH: Final = 160
MARK_HEIGHT: Final = ROWS * 10
MARK_BYTES: Final = 12
"""The byte form's length: counter, capture time, tag, CRC-16."""
NO_CAPTURE_TIME: Final = 0xFFFFFFFF
"""The capture time of a frame encoded ahead of time (see :mod:`library`): unknown."""


@dataclass(frozen=True, slots=True)
class Mark:
    """What a sender drew into one frame."""

    counter: int
    capture_ms: int
    tag: int
    """Identifies the source: its publisher's tag and the active device (see sources)."""

    def to_bytes(self) -> bytes:
        """The mark as :data:`MARK_BYTES` bytes, CRC last (carried in RTP padding by the lean path)."""
        body = (
            (self.counter & 0xFFFFFFFF).to_bytes(4, "big")
            + (self.capture_ms & 0xFFFFFFFF).to_bytes(4, "big")
            + (self.tag & 0xFFFF).to_bytes(2, "big")
        )
        return body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Mark | None:
        """The mark in ``raw`` (:data:`MARK_BYTES` long), or None when its CRC does not match."""
        body, crc = raw[:10], raw[10:12]
        if len(raw) != MARK_BYTES or binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big") != crc:
            return None
        return cls(
            counter=int.from_bytes(body[0:4], "big"),
            capture_ms=int.from_bytes(body[4:8], "big"),
            tag=int.from_bytes(body[8:10], "big"),
        )


def _bits(mark: Mark) -> npt.NDArray[np.bool_]:
    return np.unpackbits(np.frombuffer(mark.to_bytes(), dtype=np.uint8)).astype(bool)


def _cell(width: int) -> int:
    return max(1, width // BITS_PER_ROW)


def write_mark(luma: npt.NDArray[np.uint8], mark: Mark) -> None:
    """Draw ``mark`` into the top rows of a luma plane (modified in place)."""
    height, width = luma.shape
    if width < MIN_WIDTH or height < MARK_HEIGHT:
        raise ValueError(f"a {width}x{height} picture is too small for a mark")
    cell = _cell(width)
    bits = _bits(mark).reshape(ROWS, BITS_PER_ROW)
    blocks = np.where(bits, WHITE, BLACK).astype(np.uint8)
    # Each bit becomes a cell×cell block: repeat rows and columns.
    image = np.repeat(np.repeat(blocks, cell, axis=0), cell, axis=1)
    luma[: image.shape[0], : image.shape[1]] = image


def read_mark(luma: npt.NDArray[np.uint8]) -> Mark | None:
    """Read a mark back, or None when there is none or its CRC does not match."""
    height, width = luma.shape
    if width < MIN_WIDTH or height < MARK_HEIGHT:
        return None
    cell = _cell(width)
    lo, hi = cell // 4, cell - cell // 4
    grid = luma[: ROWS * cell, : BITS_PER_ROW * cell].reshape(ROWS, cell, BITS_PER_ROW, cell)
    means = grid[:, lo:hi, :, lo:hi].mean(axis=(1, 3))
    return Mark.from_bytes(np.packbits((means > (BLACK + WHITE) / 2).reshape(-1)).tobytes())
