import os

import pytest

from hawserd_harness import Hawserd
from leaks import removing_new_cgroup_parents


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


@pytest.fixture
def hawserd(hawserd_factory):
    return hawserd_factory()


@pytest.fixture(scope="session", autouse=True)
def remove_hawserd_cgroup_parents():
    """Containers run under /hawserd/<id>; the parents this session created go at its end."""
    yield from removing_new_cgroup_parents("hawserd")
