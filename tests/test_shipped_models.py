"""The models shipped in the package: present, complete metadata, sane output on tiny inputs."""

import numpy as np
import pytest

from napari_unet_loop.core.inference.predict import predict
from napari_unet_loop.core.inference.scale import measurable, model_scale
from napari_unet_loop.core.model.modelfile import load_model
from napari_unet_loop.core.model.registry import SHIPPED_DIR, shipped_models
from napari_unet_loop.core.synthetic import make_membrane_stack, make_nuclei_stack

EXPECTED = {
    "em-membranes": (1, ["interior", "membrane"]),
    "nuclei": (1, ["background", "nucleus"]),
    "wbc": (3, ["background", "cytoplasm", "nucleus"]),
}
MAX_BYTES = 10 * 1024 * 1024


def test_every_model_is_shipped_and_small():
    assert set(shipped_models()) == set(EXPECTED)
    for path in shipped_models().values():
        assert path.parent == SHIPPED_DIR
        assert path.stat().st_size <= MAX_BYTES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metadata_is_complete(name):
    model = load_model(name)
    in_channels, class_names = EXPECTED[name]
    assert model.in_channels == in_channels
    assert model.class_names == class_names
    provenance = model.provenance
    assert provenance["data"]["images"] and provenance["data"]["slices"]
    training = provenance["training"][-1]
    assert training["iterations"] > 0 and training["seconds"] > 0
    held_out = provenance["held_out_metrics"]
    dice = held_out["dice_pooled"]
    assert dice and all(0 <= v <= 1 for v in dice.values())
    # The training object scale the object-size setting compares images with; EM slices
    # have no characteristic size, so auto leaves them at theirs.
    record = model_scale(provenance)
    assert set(record) == {"image_scale", "image_peak", "object_diameter"}
    assert measurable(record) is (name != "em-membranes")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_segments_a_tiny_input(name):
    model = load_model(name)
    if name == "em-membranes":
        image, _ = make_membrane_stack((2, 96, 80), seed=3)
    else:
        image, _ = make_nuclei_stack((2, 96, 80), seed=3)
    if model.in_channels == 3:
        image = np.stack([image[0]] * 3, axis=-1)
    result = predict(image, model, device="cpu")
    assert result.labels.shape == image.shape[: image.ndim - (model.in_channels == 3)]
    assert result.labels.max() < model.num_classes
    assert result.probabilities.shape[0] == model.num_classes
    assert np.allclose(result.probabilities.sum(axis=0), 1, atol=1e-4)
