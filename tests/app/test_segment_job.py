from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from napari_unet_loop.app.segment_job import SegmentRequest, SegmentResult, segment
from napari_unet_loop.core.model.modelfile import new_model


def _run(model, image, contrast="auto", uncertainty=False):
    request = SegmentRequest(
        image=SimpleNamespace(data=image, name="cells"),
        shape=image.shape,
        rgb=False,
        z=None,
        source=None,
        ready=model,
        device="cpu",
        instances=False,
        probabilities=False,
        uncertainty=uncertainty,
        contrast=contrast,
    )
    generator = segment(request, image, SegmentResult())
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def _dark_model_and_image():
    rng = np.random.default_rng(0)
    dark = rng.normal(20, 3, (48, 48)).astype(np.float32)
    dark[10:20, 10:20] += 150
    model = new_model(["background", "nucleus"], depth=2, base_channels=4)
    model.normalization = replace(model.normalization, background="dark")
    return model, dark


def test_the_result_says_when_the_contrast_was_inverted():
    model, dark = _dark_model_and_image()
    assert not _run(model, dark).inverted
    result = _run(model, 255 - dark)
    assert result.inverted and result.labels.shape == (1, 48, 48)


def test_a_fixed_contrast_stays_on_the_model_for_retrain_and_save():
    model, dark = _dark_model_and_image()
    result = _run(model, 255 - dark, contrast="keep")
    assert not result.inverted and result.model.normalization.polarity == "keep"
    assert _run(model, dark, contrast="invert").inverted
    assert model.normalization.polarity == "invert"


def test_each_slice_gets_its_uncertainty_and_a_descriptor_for_correct_next():
    model, dark = _dark_model_and_image()
    stack = np.stack([dark, dark[::-1], 255 - dark])
    result = _run(model, stack, uncertainty=True)
    assert sorted(result.scores) == sorted(result.descriptors) == [0, 1, 2]
    assert result.uncertainty.shape == stack.shape
    assert not np.array_equal(result.descriptors[0], result.descriptors[2])
