import pytest
import torch

from napari_unet_loop.core.errors import DeviceUnavailableError
from napari_unet_loop.core.model.devices import autocast_dtype, available_devices, get_device


def test_auto_resolves_to_best_available():
    assert get_device("auto").type == available_devices()[0]
    assert available_devices()[-1] == "cpu"


def test_cpu_always_works():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(" CPU ") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        get_device("cuda")


def test_unknown_device_is_a_clear_error():
    with pytest.raises(DeviceUnavailableError, match="unknown device"):
        get_device("tpu")


def test_no_autocast_on_cpu():
    assert autocast_dtype(torch.device("cpu")) is None
