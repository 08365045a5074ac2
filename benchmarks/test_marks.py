"""Frame-mark cost against a plain copy of the same picture (the in-run baseline).

The media-core benchmarks proper (packetise, SRTP, SFU forwarding, participants per
core) come with the media-core issue; this one keeps ``tox -e bench`` meaningful.
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from simulator.media.marks import Mark, read_mark, write_mark

PICTURE = np.full((240, 320), 128, dtype=np.uint8)


@pytest.mark.benchmark(group="frame-mark")
def test_baseline_copy_picture(benchmark: BenchmarkFixture) -> None:
    benchmark(PICTURE.copy)


@pytest.mark.benchmark(group="frame-mark")
def test_write_mark(benchmark: BenchmarkFixture) -> None:
    benchmark(lambda: write_mark(PICTURE.copy(), Mark(1, 2, 3)))


@pytest.mark.benchmark(group="frame-mark")
def test_read_mark(benchmark: BenchmarkFixture) -> None:
    picture = PICTURE.copy()
    write_mark(picture, Mark(1, 2, 3))
    assert read_mark(picture) == Mark(1, 2, 3)
    benchmark(read_mark, picture)
