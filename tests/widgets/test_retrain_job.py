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


def tiny_session() -> LoopSession:
    session = LoopSession()
    session.push_model(tiny_model(), "tiny")
    return session


def correct(labels: Labels, session: LoopSession, truth: np.ndarray) -> None:
    track_edits(labels, session)
    ys, xs = np.nonzero(truth != labels.data)
    labels.data_setitem((ys, xs), truth[ys, xs])


def test_corrections_and_unedited_images_of_other_segmentations_join_the_round():
    images, truth = make_membrane_stack((4, 48, 48), seed=0)
    session = tiny_session()
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
    session = tiny_session()
    image, labels = segmented("stack", images)
    track_edits(labels, session)
    labels.data_setitem((np.full(4, 2), np.arange(4), np.arange(4)), np.ones(4, np.uint8))
    job = make_job(session, labels, image, sparse=False, settings=ROUND, layers=[image, labels])
    context = job.args[3]
    assert len(context) == 4 and job.others == ()
    assert corrections_text(job) == "slice 2"


def test_a_second_segmentation_of_the_same_stack_gives_no_corrected_slice_as_context():
    images, truth = make_membrane_stack((3, 32, 32), seed=2)
    session = tiny_session()
    image, first = segmented("st", images)
    second = Labels(np.zeros(images.shape, np.uint8), name="st segmentation (2)")
    second.metadata[META_KEY] = dict(first.metadata[META_KEY])
    track_edits(first, session)
    first.data_setitem((np.zeros(4, int), np.arange(4), np.arange(4)), np.ones(4, np.uint8))
    job = make_job(
        session, second, image, sparse=False, settings=ROUND, layers=[image, first, second]
    )
    _, trained, _, context, *_ = job.args
    # Only ``first`` is edited: the round takes its slice 0, and 1 and 2 are the context.
    assert job.slices == [] and job.others == ("st segmentation",)
    assert corrections_text(job) == "st segmentation"
    np.testing.assert_array_equal(trained[0], images[0])
    assert len(context) == 2
    assert not any(np.array_equal(c, images[0]) for c in context)


def test_instance_labels_and_other_layer_kinds_stay_out():
    from napari.layers import Shapes

    images, truth = make_membrane_stack((2, 32, 32), seed=3)
    session = tiny_session()
    a, a_seg = segmented("a", images[0])
    b, b_seg = segmented("b", images[1])
    b_seg.metadata[META_KEY]["instances"] = True
    shapes = Shapes(name="outline", metadata={META_KEY: dict(a_seg.metadata[META_KEY])})
    correct(a_seg, session, truth[0])
    correct(b_seg, session, truth[1])
    layers = [a, a_seg, b, b_seg, shapes]
    job = make_job(session, a_seg, a, sparse=False, settings=ROUND, layers=layers)
    assert job.others == () and len(job.args[2]) == 1 and job.args[3] == []
