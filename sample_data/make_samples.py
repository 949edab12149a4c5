"""Regenerate the bundled sample stacks from the project's own seeded generator.

    python sample_data/make_samples.py

Writes an EM-like membrane stack and a nuclei-like fluorescence stack, each with its ground
truth, next to this file, and the same arrays as the plugin's File ▸ Open Sample data
(``src/napari_unet_loop/samples/*.npz``). Nothing here comes from a third-party dataset.
"""

from pathlib import Path

import numpy as np
import tifffile

from napari_unet_loop._sample_data import SAMPLE_SHAPE as SHAPE
from napari_unet_loop._sample_data import SAMPLES, SEED
from napari_unet_loop.core.io.write import write_labels
from napari_unet_loop.core.synthetic import make_membrane_stack, make_nuclei_stack

HERE = Path(__file__).resolve().parent


def main() -> None:
    samples = {
        "em_membranes": make_membrane_stack(SHAPE, seed=SEED),
        "nuclei": make_nuclei_stack(SHAPE, seed=SEED),
    }
    for name, (image, labels) in samples.items():
        tifffile.imwrite(HERE / f"{name}.tif", image, compression="zlib", imagej=True)
        write_labels(HERE / f"{name}_labels.tif", labels)
        np.savez_compressed(SAMPLES / f"{name}.npz", image=image, labels=labels)


if __name__ == "__main__":
    main()
