import os
from pathlib import Path

import pytest

from hawserd_harness import Hawserd


@pytest.fixture
def hawserd():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = Hawserd()
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def hawserd_factory():
    """hawserd_factory(*flags) -> a started Hawserd with more flags; all cleaned up at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    made = []

    def factory(*flags: str) -> Hawserd:
        d = Hawserd(*flags)
        made.append(d)
        d.start()
        return d
    try:
        yield factory
    finally:
        for d in made:
            d.cleanup()


@pytest.fixture(scope="session", autouse=True)
def remove_hawserd_cgroup_parents():
    """Containers run under /hawserd/<id>; the parents this session created go at its end."""
    def parents():
        return {h / "hawserd" for h in Path("/sys/fs/cgroup").iterdir()
                if (h / "hawserd").is_dir()}
    before = parents()
    yield
    for parent in parents() - before:
        try:
            parent.rmdir()
        except OSError:
            pass
