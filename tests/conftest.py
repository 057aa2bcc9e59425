"""Fixtures shared by the lessons' tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """One CPU thread for the test, the caller's setting restored after it: the lessons' small networks
    gain little from a second thread and lose a lot when the other core is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
