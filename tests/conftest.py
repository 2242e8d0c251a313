"""Settings every test module shares."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from app.views.lab_store import CACHE_ENV

# Hypothesis' per-example deadline (200 ms) is a timing assertion: on a 2-core machine shared
# with other jobs an example of a correct test took 486 ms and failed. Speed is `cowlab bench`'s
# to judge (DESIGN.md §7), so examples here are judged on behaviour only.
settings.register_profile("cowlab", deadline=None)
settings.load_profile("cowlab")


@pytest.fixture(scope="session", autouse=True)
def _lab_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The stored sweep (app/views/lab_store.py) under this run's temporary directory, never the
    user's cache: the parent of the base directory is shared by the xdist workers of a run, so
    the first one to need the sweep computes it (under its file lock) and the others read it."""
    directory = tmp_path_factory.getbasetemp().parent / "cowlab-cache"
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(directory)
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A fixture a test module builds once for its tests is built once in a parallel run too.

    scripts/test runs pytest-xdist with ``--dist loadgroup``: left alone, the tests of a module
    are dealt to both workers, and each worker builds the module's costly fixture (the lab's
    sweep, every preset's C program compiled, a server measured under the worst requests).
    The tests that use a module- or session-scoped fixture defined in their own module share an
    ``xdist_group``, so one worker builds it. Fixtures of a conftest (a server, a browser) are
    each worker's own and group nothing. Without xdist the mark does nothing.
    """
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        module = item.nodeid.split("::", 1)[0]
        for defs in item._fixtureinfo.name2fixturedefs.values():
            if any(d.scope in ("module", "session") and d.baseid == module for d in defs):
                item.add_marker(pytest.mark.xdist_group(module))
                break
