import pytest
import torch

from napari_unet_loop.core.model.unet import UNet, UNetConfig, pad_to_multiple


@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (5, 9), (128, 96)])
def test_any_size_gives_same_size_logits(shape):
    net = UNet(UNetConfig(depth=3, base_channels=4)).eval()
    with torch.inference_mode():
        out = net(torch.randn(2, 1, *shape))
    assert out.shape == (2, 2, *shape)


@pytest.mark.parametrize("in_channels,num_classes", [(1, 2), (3, 3), (1, 5)])
def test_channels_and_classes(in_channels, num_classes):
    net = UNet(in_channels=in_channels, num_classes=num_classes, depth=2, base_channels=4)
    assert net(torch.randn(1, in_channels, 32, 32)).shape == (1, num_classes, 32, 32)


def test_options_change_the_network():
    plain = UNet(depth=2, base_channels=4, batch_norm=False)
    with_bn = UNet(depth=2, base_channels=4, dropout=0.2)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, torch.nn.Dropout2d) for m in with_bn.modules())


def test_config_round_trip_and_validation():
    config = UNetConfig(in_channels=3, num_classes=4, depth=3, base_channels=8, dropout=0.1)
    assert UNetConfig.from_dict(config.to_dict()) == config
    for bad in ({"in_channels": 2}, {"num_classes": 1}, {"depth": 0}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            UNetConfig(**bad)


def test_pad_to_multiple_pads_bottom_right_only():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    padded, size = pad_to_multiple(x, 4)
    assert size == (3, 4)
    assert padded.shape == (1, 1, 4, 4)
    assert torch.equal(padded[..., :3, :4], x)
