import pytest

from convtasnet_hailo.backends import backend_names, load_backend
from convtasnet_hailo.errors import UserError


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(UserError, match="unknown backend 'tensorrt'; registered backends: .*torch_proxy"):
        load_backend("tensorrt")


def test_torch_proxy_is_registered_once_loaded():
    backend = load_backend("torch_proxy")
    assert backend.name == "torch_proxy" and "torch_proxy" in backend_names()
