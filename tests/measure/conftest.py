"""The fake runner (hwprofile.runners._fake) registered for a test module: ``pytestmark =
pytest.mark.usefixtures("fake_runner")``."""

import pytest

from hwprofile.runners._fake import PATH
from hwprofile.runners._registry import register_runner, unregister_runner


@pytest.fixture
def fake_runner():
    register_runner("fake", PATH)
    yield
    unregister_runner("fake")
