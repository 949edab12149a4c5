"""What a Retrain round takes from the viewer: every segmentation's corrections and context."""

from __future__ import annotations

import numpy as np
from _loop_setup import CLASSES, tiny_model
from napari.layers import Image, Labels

from napari_unet_loop.app.session import LoopSession
from napari_unet_loop.core.synthetic import make_membrane_stack
from napari_unet_loop.widgets._edits import track_edits
from napari_unet_loop.widgets._layers import META_KEY
from napari_unet_loop.widgets._retrain_job import corrections_text, make_job

ROUND = None  # make_job only passes the settings on


def segmented(name: str, image: np.ndarray, scale: float = 1.0, classes=CLASSES):
    """An image layer and the labels layer Segment would have made of it."""
    meta = {"image_layer": name, "model": "tiny", "classes": list(classes), "scale": scale}
    labels = Labels(np.zeros(image.shape, np.uint8), name=f"{name} segmentation")
    labels.metadata[META_KEY] = meta
    return Image(image, name=name), labels


def correct(labels: Labels, session: LoopSession, truth: np.ndarray) -> None:
    track_edits(labels, session)
    ys, xs = np.nonzero(truth != labels.data)
    labels.data_setitem((ys, xs), truth[ys, xs])


def test_corrections_and_unedited_images_of_other_segmentations_join_the_round():
    images, truth = make_membrane_stack((4, 48, 48), seed=0)
    session = LoopSession()
    session.push_model(tiny_model(), "tiny")
    a, a_seg = segmented("a", images[0])
    b, b_seg = segmented("b", images[1], scale=0.5)
    c, c_seg = segmented("c", images[2], scale=2.0)
    d, d_seg = segmented("d", images[3], classes=["background", "nucleus"])  # another task
    for labels, image_truth in ((a_seg, truth[0]), (b_seg, truth[1])):
        correct(labels, session, image_truth)
    layers = [a, a_seg, b, b_seg, c, c_seg, d, d_seg]
    job = make_job(session, a_seg, a, sparse=False, settings=ROUND, layers=layers)
    model, trained, targets, context, _, scales, context_scales = job.args
    assert model is session.model
    assert [t.shape for t in targets] == [(48, 48)] * 2  # a's and b's corrections
    np.testing.assert_array_equal(trained[1], images[1])
    assert scales == [1.0, 0.5]
    assert len(context) == 1 and context_scales == [2.0]  # c: unedited, same classes
    np.testing.assert_array_equal(context[0], images[2])
    assert job.others == ("b segmentation",)
    assert corrections_text(job) == "slice 0 + b segmentation"


def test_a_stack_alone_gives_its_unedited_slices_as_before():
    images, truth = make_membrane_stack((6, 32, 32), seed=1)
    session = LoopSession()
    session.push_model(tiny_model(), "tiny")
    image, labels = segmented("stack", images)
    track_edits(labels, session)
    labels.data_setitem((np.full(4, 2), np.arange(4), np.arange(4)), np.ones(4, np.uint8))
    job = make_job(session, labels, image, sparse=False, settings=ROUND, layers=[image, labels])
    context = job.args[3]
    assert len(context) == 4 and job.others == ()
    assert corrections_text(job) == "slice 2"
