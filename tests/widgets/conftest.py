"""Fixtures for the dock widget tests: tiny models, isolated sessions, captured notifications."""

from __future__ import annotations

import importlib

import pytest

from napari_unet_loop.app import session as session_module

# Modules that import show_error / show_info by name; patching them there captures the messages.
_NOTIFYING = (
    "napari_unet_loop.widgets._worker",
    "napari_unet_loop.widgets._edits",
    "napari_unet_loop.widgets._autosave",
    "napari_unet_loop.widgets._panel",
    "napari_unet_loop.widgets.segment_widget",
    "napari_unet_loop.widgets.batch_widget",
    "napari_unet_loop.widgets.retrain_widget",
    "napari_unet_loop.widgets.metrics_widget",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """A fresh session registry (viewer ids get reused) and a private home for autosaves."""
    monkeypatch.setattr(session_module, "_SESSIONS", {})
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """A tiny untrained 2-class model file (background, membrane)."""
    from napari_unet_loop.core.model.modelfile import new_model, save_model

    model = new_model(["background", "membrane"], depth=2, base_channels=4, name="tiny")
    return save_model(model, tmp_path_factory.mktemp("models") / "tiny.safetensors")


@pytest.fixture
def notes(monkeypatch):
    """Messages shown to the user: ``notes["error"]`` and ``notes["info"]`` lists."""
    seen: dict[str, list[str]] = {"error": [], "info": []}
    for name in _NOTIFYING:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for kind in seen:
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", seen[kind].append)
    return seen


@pytest.fixture
def wait_idle(qtbot):
    """``wait_idle(widget)``: block until the widget's worker has finished (and cleaned up)."""

    def wait(widget, timeout: int = 30_000) -> None:
        qtbot.waitUntil(lambda: not widget.running, timeout=timeout)

    return wait


@pytest.fixture
def fake_train(monkeypatch):
    """Replace training with three instant updates; records what it was given."""
    from napari_unet_loop.core.training import train as training
    from napari_unet_loop.core.training.train import TrainUpdate

    calls = []

    def fake(
        model, images, labels, *, config, val_images=None, val_labels=None, weights=None, **keep
    ):
        calls.append(
            dict(
                images=images,
                labels=labels,
                val_images=val_images,
                val_labels=val_labels,
                config=config,
            )
        )
        return iter(
            [
                TrainUpdate(1, 3, 0.5, 0.25, 2.0),
                TrainUpdate(2, 3, 0.45, None, 3.0),
                TrainUpdate(3, 3, 0.4, 0.5, 4.0, done=True, model=model.copy()),
            ]
        )

    monkeypatch.setattr(training, "train", fake)
    return calls
