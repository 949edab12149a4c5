"""Regenerate the bundled sample stacks from the project's own seeded generator.

    python sample_data/make_samples.py

Writes an EM-like membrane stack and a nuclei-like fluorescence stack, each with its ground
truth, next to this file. Nothing here comes from a third-party dataset.
"""

from pathlib import Path

import tifffile

from napari_unet_loop.core.io.read import write_labels
from napari_unet_loop.core.synthetic import make_membrane_stack, make_nuclei_stack

HERE = Path(__file__).resolve().parent
SHAPE = (8, 256, 256)


def main() -> None:
    samples = {
        "em_membranes": make_membrane_stack(SHAPE, seed=0),
        "nuclei": make_nuclei_stack(SHAPE, seed=0),
    }
    for name, (image, labels) in samples.items():
        tifffile.imwrite(HERE / f"{name}.tif", image, compression="zlib", imagej=True)
        write_labels(HERE / f"{name}_labels.tif", labels)


if __name__ == "__main__":
    main()
