import numpy as np

from napari_unet_loop.app.session import LoopSession, forget_session, session_for
from napari_unet_loop.core.model.modelfile import new_model


def _model(seed):
    return new_model(["a", "b"], depth=1, base_channels=2, seed=seed)


def test_history_steps_back_and_forward():
    session = LoopSession()
    assert session.model is None
    first, second = _model(0), _model(1)
    session.push_model(first, "loaded")
    session.push_model(second, "retrain 1")
    assert session.model is second
    session.select_version(0)
    assert session.model is first
    assert [v.label for v in session.versions] == ["loaded", "retrain 1"]


def test_every_version_stays_and_a_version_not_adopted_is_listed_but_not_current():
    session = LoopSession()
    for i in range(3):
        session.push_model(_model(i), f"v{i}")
    session.select_version(0)
    session.push_model(_model(9), "retrain from v0")
    assert [v.label for v in session.versions] == ["v0", "v1", "v2", "retrain from v0"]
    assert session.current_index == 3
    kept = session.model
    session.push_model(_model(5), "worse round", current=False)
    assert session.model is kept and session.versions[-1].label == "worse round"


def _stroke(*pixels):
    mask = np.zeros((4, 4), bool)
    for y, x in pixels:
        mask[y, x] = True
    return mask


def test_painted_strokes_mark_slices_edited_and_keep_their_pixels():
    session = LoopSession()
    session.paint("seg", {3: _stroke((0, 0)), 1: _stroke((1, 1))})
    session.paint("seg", {3: _stroke((2, 2))})
    assert session.edited_slices("seg") == [1, 3]
    np.testing.assert_array_equal(session.painted_mask("seg", 3), _stroke((0, 0), (2, 2)))
    assert session.painted_mask("seg", 0) is None and session.painted_mask("other", 3) is None
    session.painted("seg")[3][:] = True  # copies: the session's masks stay as painted
    assert session.painted_mask("seg", 3).sum() == 2


def test_signals_fire_on_a_stroke_and_when_the_edited_slices_change():
    session = LoopSession()
    strokes, edits, anything = [], [], []
    session.events.painted.connect(lambda layer, slices: strokes.append((layer, slices)))
    session.events.edits.connect(edits.append)
    session.events.all.connect(lambda info: anything.append(info.signal.name))
    session.paint("seg", {3: _stroke((0, 0))})
    session.paint("seg", {3: _stroke((1, 1))})  # the same slice again: no new edited slice
    assert strokes == [("seg", {3}), ("seg", {3})] and edits == ["seg"]
    session.restore("seg", {0: _stroke((0, 0))})  # reloaded corrections: no stroke
    assert len(strokes) == 2 and edits == ["seg", "seg"]
    session.rename_layer("seg", "seg2")
    assert session.edited_slices("seg2") == [0, 3] and session.painted_mask("seg2", 3).sum() == 2
    assert edits[-2:] == ["seg", "seg2"]
    session.clear_edits("seg2")
    assert session.edited_slices("seg2") == [] and session.painted("seg2") == {}
    assert edits[-1] == "seg2"
    session.push_model(_model(0), "loaded")
    assert anything.count("versions") == 1 and anything.count("painted") == 2


def test_scores_per_version_live_in_the_session():
    session = LoopSession()
    scored = []
    session.events.scores.connect(lambda: scored.append(1))
    session.push_model(_model(0), "loaded")
    session.push_model(_model(1), "retrain 1")
    session.record_score("truth", 0, {"a": 0.5, "b": 0.25})
    session.record_score("truth", 1, {"a": 0.75, "b": 0.5})
    session.record_score("truth", 1, {"a": 0.8, "b": 0.5})  # rescored: the row is replaced
    assert session.scores.rows("truth", ["a", "b"]) == [
        ["loaded", "0.5000", "0.2500"],
        ["retrain 1", "0.8000", "0.5000"],
    ]
    assert session.scores.rows("other truth", ["a", "b"]) == [] and len(scored) == 3


def test_one_session_per_viewer():
    viewer_a, viewer_b = object(), object()
    assert session_for(viewer_a) is session_for(viewer_a)
    assert session_for(viewer_a) is not session_for(viewer_b)
    forget_session(viewer_a)
    forget_session(viewer_b)


def test_a_proxy_of_the_viewer_finds_the_viewers_session():
    import wrapt  # napari hands plugin widgets a wrapt proxy of the viewer

    class Viewer:
        pass

    viewer = Viewer()
    session = session_for(viewer)
    assert session_for(wrapt.ObjectProxy(viewer)) is session
    forget_session(wrapt.ObjectProxy(viewer))
    assert session_for(viewer) is not session
    forget_session(viewer)


def test_the_previous_version_is_what_ab_compares_and_curves_stay_with_versions():
    from napari_unet_loop.app.curve import Curve

    session = LoopSession()
    assert session.previous is None
    first = session.push_model(new_model(["a", "b"], depth=2, base_channels=4), "first")
    curve = Curve()
    second = session.push_model(first.model.copy(), "second", curve=curve)
    assert session.previous is first and second.curve is curve and first.curve is None
    session.select_version(0)
    assert session.previous is second
    session.select_version(0)  # choosing the current one again changes nothing
    assert session.previous is second
