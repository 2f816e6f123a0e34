import pytest

import modelyard_server


@pytest.fixture(scope="session")
def server():
    """One real server for the whole session; each test makes its own projects and users."""
    running = modelyard_server.start()
    yield running
    modelyard_server.cleanup(running)
