"""Fixtures the image tests share."""
import pytest

import layers
from supervisor.snapshots.overlay import Snapshotter


@pytest.fixture
def snaps(tmp_path):
    """A snapshotter of the test's own; whatever a test mounted under tmp_path goes with it."""
    s = Snapshotter(str(tmp_path / "root"), str(tmp_path / "meta.db"))
    try:
        yield s
    finally:
        layers.unmount_under(tmp_path)
        s.close()
