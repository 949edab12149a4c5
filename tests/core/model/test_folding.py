import torch

from napari_unet_loop.core.model.folding import fold_batchnorm
from napari_unet_loop.core.model.unet import UNet, UNetConfig


def trained_looking_unet() -> UNet:
    """A small U-Net whose batch norms hold statistics and affine terms far from the defaults."""
    torch.manual_seed(0)
    network = UNet(UNetConfig(depth=2, base_channels=4, num_classes=3))
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n))
            module.running_var.copy_(torch.rand(n) * 3 + 0.1)
            module.weight.data.copy_(torch.randn(n))
            module.bias.data.copy_(torch.randn(n))
    return network.eval()


def test_folded_network_gives_the_same_logits():
    network = trained_looking_unet()
    folded = fold_batchnorm(network)
    x = torch.randn(2, 1, 40, 36)
    with torch.inference_mode():
        expected, got = network(x), folded(x)
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())


def test_folding_leaves_the_trainable_network_alone():
    network = trained_looking_unet().train()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    folded = fold_batchnorm(network)
    assert folded is not network and network.training and not folded.training
    after = network.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_other_networks_are_returned_as_they_are():
    plain = UNet(UNetConfig(depth=1, base_channels=2, batch_norm=False))
    wrapper = torch.nn.Sequential(UNet(UNetConfig(depth=1, base_channels=2)))
    assert fold_batchnorm(plain) is plain
    assert fold_batchnorm(wrapper) is wrapper
