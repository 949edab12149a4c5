"""napari-unet-loop: segment, correct, retrain and measure microscopy stacks with a U-Net.

The package root imports nothing heavy: opening napari or a sample must not import torch.
"""

__version__ = "0.1.0"
