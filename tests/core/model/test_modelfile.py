import json

import pytest
import torch

from napari_unet_loop.core.errors import ModelFileError
from napari_unet_loop.core.model.modelfile import (
    load_model,
    model_from_bytes,
    model_to_bytes,
    new_model,
    resolve_model_path,
    save_model,
)
from napari_unet_loop.core.model.normalize import Normalization


@pytest.fixture
def model():
    m = new_model(["background", "membrane"], depth=2, base_channels=4, name="tiny")
    m.provenance = {"data": "synthetic", "iterations": 3}
    return m


def _outputs(model, x):
    with torch.inference_mode():
        return model.network.eval()(x)


def test_round_trip_keeps_weights_and_metadata(model, tmp_path):
    path = save_model(model, tmp_path / "tiny")
    assert path.name == "tiny.safetensors"
    loaded = load_model(path)
    assert loaded.class_names == ["background", "membrane"]
    assert loaded.provenance == {"data": "synthetic", "iterations": 3}
    assert loaded.config == model.config
    x = torch.randn(1, 1, 32, 32)
    assert torch.allclose(_outputs(loaded, x), _outputs(model, x))


def test_bytes_round_trip_matches_the_file_format(model, tmp_path):
    data = model_to_bytes(model)
    loaded = model_from_bytes(data)
    assert loaded.class_names == model.class_names and loaded.provenance == model.provenance
    x = torch.randn(1, 1, 32, 32)
    assert torch.equal(_outputs(loaded, x), _outputs(model, x))
    (tmp_path / "m.safetensors").write_bytes(data)
    assert load_model(tmp_path / "m.safetensors").config == model.config
    with pytest.raises(ModelFileError, match="sent model: not a readable model file"):
        model_from_bytes(data[:100], "sent model")


def test_half_precision_file_is_smaller_and_close(model, tmp_path):
    full = save_model(model, tmp_path / "full.safetensors")
    half = save_model(model, tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    x = torch.randn(1, 1, 32, 32)
    assert torch.allclose(_outputs(load_model(half), x), _outputs(model, x), atol=1e-2)


def test_new_model_is_seeded():
    a = new_model(["a", "b"], depth=2, base_channels=4, seed=3)
    b = new_model(["a", "b"], depth=2, base_channels=4, seed=3)
    for pa, pb in zip(a.network.parameters(), b.network.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_copy_is_independent(model):
    clone = model.copy()
    with torch.no_grad():
        next(clone.network.parameters()).add_(1.0)
    assert not torch.equal(next(clone.network.parameters()), next(model.network.parameters()))


def test_class_names_must_match_network():
    m = new_model(["a", "b"], depth=1, base_channels=2)
    with pytest.raises(ValueError):
        type(m)(m.network, ["a", "b", "c"], Normalization())


def test_garbage_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="bad.safetensors"):
        load_model(bad)


def test_truncated_file_is_one_clear_error(model, tmp_path):
    path = save_model(model, tmp_path / "m")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="m.safetensors"):
        load_model(path)


def test_mismatched_metadata_is_one_clear_error(model, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_model(model, tmp_path / "m")
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["napari_unet_loop"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    meta["architecture"]["depth"] = 3
    save_file(state, str(path), metadata={"napari_unet_loop": json.dumps(meta)})
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(path)


def test_foreign_safetensors_file_is_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match="metadata"):
        load_model(path)


def test_pickle_file_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.safetensors"
    torch.save({"x": 1}, path)
    with pytest.raises(ModelFileError):
        load_model(path)


def test_unknown_name_lists_shipped_models():
    with pytest.raises(ModelFileError, match="unknown model 'no-such-model'"):
        resolve_model_path("no-such-model")
