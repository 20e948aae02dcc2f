"""One build of this tree and its wheelhouse for every install test in the session."""

from __future__ import annotations

import pytest

from tests.ansible.release import Release, build_release


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    return build_release(tmp_path_factory.mktemp("release"))
