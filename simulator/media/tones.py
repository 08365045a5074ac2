"""Per-participant tones and their detection: "who is heard" is measured, not assumed.

Every participant's microphone carries one sine tone from :data:`TONES_HZ`. The tones
sit on exact FFT bins of a 20 ms frame at 48 kHz (50 Hz resolution), 150 Hz apart, so
one 20 ms frame tells which tone it carries.
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["SAMPLE_RATE", "SILENCE_DBFS", "TONES_HZ", "analyse", "tone_for", "tone_samples"]

SAMPLE_RATE: Final = 48_000
TONES_HZ: Final = tuple(range(450, 3001, 150))
"""18 tones; participants beyond that share tones (identities still come from the SFU's map)."""
SILENCE_DBFS: Final = -50.0
"""Below this level a frame counts as silence."""
AMPLITUDE: Final = 0.3


def tone_for(index: int | str) -> int:
    """The tone of participant ``index`` (an int), or a stable one derived from a uid."""
    if isinstance(index, str):
        index = int.from_bytes(hashlib.sha256(index.encode()).digest()[:4], "big")
    return TONES_HZ[index % len(TONES_HZ)]


def tone_samples(
    frequency: float, start: int, count: int, amplitude: float = AMPLITUDE
) -> npt.NDArray[np.int16]:
    """``count`` samples of the tone starting at sample ``start`` (phase-continuous)."""
    t = (np.arange(start, start + count, dtype=np.float64)) / SAMPLE_RATE
    wave = amplitude * np.sin(2 * np.pi * frequency * t)
    return (wave * 32767).astype(np.int16)


def analyse(samples: npt.NDArray[np.int16]) -> tuple[float, int | None]:
    """Level in dBFS and the dominant tone of one mono frame (None when silent)."""
    if samples.size == 0:
        return -120.0, None
    floats = samples.astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(floats * floats)))
    level = 20 * np.log10(rms) if rms > 0 else -120.0
    if level < SILENCE_DBFS:
        return float(level), None
    spectrum = np.abs(np.fft.rfft(floats * np.hanning(floats.size)))
    peak_hz = float(np.argmax(spectrum)) * SAMPLE_RATE / floats.size
    nearest = min(TONES_HZ, key=lambda f: abs(f - peak_hz))
    tone = nearest if abs(nearest - peak_hz) <= 60 else None
    return float(level), tone
