"""The host steps' forms: every class that says it has a tiled or streaming form of its own has
one registered, and none is registered for a class that does not say so."""

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from convtasnet_hailo.plan.host_steps import HostWork, OverlapAdd
from convtasnet_hailo.runtime import host_forms


def test_every_registered_form_belongs_to_a_class_that_names_it():
    host_forms.check_forms()
    assert OverlapAdd in host_forms.STREAMING and OverlapAdd not in host_forms.TILED


def test_a_step_that_claims_a_form_it_lacks_fails_the_check():
    @dataclasses.dataclass(frozen=True)
    class Claims(HostWork):
        input: str
        output: str
        tiled_form: ClassVar[str] = "own"

        def apply(self, store):
            return {self.output: store[self.input]}

    with pytest.raises(RuntimeError, match="Claims: tiled_form is 'own'"):
        host_forms.check_forms()
    del Claims  # the class stays a subclass until collected; the check below must not see it
    import gc

    gc.collect()


def test_a_new_per_frame_step_runs_tiled_and_streaming_through_its_apply():
    @dataclasses.dataclass(frozen=True)
    class Double(HostWork):
        input: str
        output: str

        def apply(self, store):
            return {self.output: 2 * np.asarray(store[self.input])}

    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    assert np.array_equal(host_forms.run_tiled(Double("x", "y"), {"x": x})["y"], 2 * x)
    del Double
    import gc

    gc.collect()
