import pytest

from convtasnet_hailo.backends import backend_names
from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.errors import UserError


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(UserError, match="unknown backend 'tensorrt'; registered backends: .*torch_proxy"):
        load_backend("tensorrt")


def test_torch_proxy_is_registered_once_loaded():
    backend = load_backend("torch_proxy")
    assert backend.name == "torch_proxy" and "torch_proxy" in backend_names()


def test_the_base_class_prepares_once_per_plan_and_tile_width():
    from convtasnet_hailo.backends.base import Backend
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.plan import PlanOptions, build_plan
    from tests.conftest import TINY

    class Counting(Backend):
        name = "counting"

        def __init__(self):
            self.prepared = []

        def _prepare(self, plan, tile_w):
            self.prepared.append(tile_w)

        def run_stage(self, stage, inputs):
            raise AssertionError("not run here")

    model = random_model(TINY)
    backend = Counting()
    assert backend.quantized is False  # declared by the contract, not looked up
    for tile_w in (16, 16, 32, 32, 16):
        backend.prepare(build_plan(model), tile_w)  # a rebuilt plan of the same model counts as the same
    backend.prepare(build_plan(model, PlanOptions(fuse=False)), 16)  # other stages: prepared again
    backend.prepare(build_plan(random_model(TINY)), 16)  # another model: prepared again
    assert backend.prepared == [16, 32, 16, 16, 16]
    backend.close()
    backend.prepare(build_plan(model), 16)
    assert backend.prepared[-1] == 16 and len(backend.prepared) == 6
