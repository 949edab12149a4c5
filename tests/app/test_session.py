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


def test_edits_and_notifications():
    session = LoopSession()
    calls = []
    session.subscribe(lambda: calls.append(1))
    session.mark_edited("seg", [3, 1])
    session.mark_edited("seg", {3})
    assert session.edited_slices("seg") == [1, 3]
    session.rename_layer("seg", "seg2")
    assert session.edited_slices("seg2") == [1, 3]
    session.clear_edits("seg2")
    assert session.edited_slices("seg2") == []
    assert len(calls) == 4


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
