"""One resolver decides which model a run takes (runtime/sources.py)."""

import pytest

from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.runtime.sources import ModelChoice, ModelDefault, resolve
from tests.conftest import TINY


@pytest.fixture()
def tiny_export(tmp_path, tiny_checkpoint):
    out = tmp_path / "export"
    assert main(["export", "--model", str(tiny_checkpoint), "--out", str(out), "--tile-w", "32"]) == 0
    return out


def test_an_export_gives_its_recorded_model_with_or_without_weights(tiny_export, tiny_checkpoint):
    without = resolve(ModelChoice(export_dir=tiny_export))
    assert without.model is None and without.config == TINY and without.export_dir == tiny_export
    rebuilt = resolve(ModelChoice(export_dir=tiny_export, weights=True))
    assert rebuilt.model is not None and rebuilt.sha256 == without.sha256 and rebuilt.path == str(tiny_checkpoint)


def test_a_random_export_is_rebuilt_from_its_recorded_seed_not_the_callers(tmp_path):
    out = tmp_path / "export"
    assert main(["export", "--random-preset", "tiny", "--seed", "5", "--out", str(out), "--tile-w", "32"]) == 0
    rebuilt = resolve(ModelChoice(export_dir=out, weights=True, seed=0))
    expected = random_model(TINY, seed=5).state_dict()
    assert rebuilt.random_seed == 5
    assert all((rebuilt.model.state_dict()[k] == v).all() for k, v in expected.items())


def test_another_checkpoint_beside_an_export_is_refused(tiny_export, tmp_path):
    other = tmp_path / "other.pth"
    save_model(random_model(TINY, seed=12), other)
    with pytest.raises(UserError, match="is not the checkpoint the export .* was made from"):
        resolve(ModelChoice(model=str(other), export_dir=tiny_export))


def test_the_default_applies_only_without_model_or_export():
    assert resolve(ModelChoice(default=ModelDefault.RANDOM, preset="tiny", seed=2)).random_seed == 2
    from convtasnet_hailo.assets import DEMO_MODEL

    assert resolve(ModelChoice(default=ModelDefault.DEMO)).path == str(DEMO_MODEL)


def test_a_recorded_checkpoint_is_opened_only_when_its_hash_binds_it(tiny_export, tmp_path):
    import json

    manifest = tiny_export / "manifest.json"
    record = json.loads(manifest.read_text())
    planted = tmp_path / "elsewhere.pth"
    save_model(random_model(TINY, seed=13), planted)
    record["model"]["model_path"] = str(planted)  # a checkpoint outside the export, hash left as it was
    manifest.write_text(json.dumps(record))
    with pytest.raises(UserError, match="is not the checkpoint the export"):
        resolve(ModelChoice(export_dir=tiny_export, weights=True))
    record["model"]["model_sha256"] = None
    manifest.write_text(json.dumps(record))
    with pytest.raises(UserError, match="without its sha256"):
        resolve(ModelChoice(export_dir=tiny_export, weights=True))
