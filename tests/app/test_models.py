import pytest

from napari_unet_loop.app.models import check_device, is_shipped, load_source, shipped_names
from napari_unet_loop.core.errors import DeviceUnavailableError


def test_the_shipped_models_are_listed_by_name():
    names = shipped_names()
    assert {"em-membranes", "nuclei", "wbc"} <= set(names)
    assert is_shipped("nuclei") and not is_shipped("no-such-model")


def test_a_model_the_gui_already_has_is_not_loaded_again():
    ready = object()
    assert load_source("no-such-model", ready) is ready


def test_auto_and_cpu_always_exist_and_a_missing_gpu_is_refused():
    check_device("auto")
    check_device("cpu")
    with pytest.raises(DeviceUnavailableError):
        check_device("cuda:99")
