"""Write the fixed, seeded train/validation/test splits of the nuclei and wbc sets.

    python recipes/make_splits.py [DATA_DIR]

Splits are by image id; 80 % train (of which every tenth id validates early stopping) and
20 % test. In wbc dataset1, images 112 and 139 are the same picture with two annotations, so
they always land in the same split.
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 2012


def split(ids: list[list[str]], seed: int) -> dict[str, list[str]]:
    """Shuffle groups of ids (kept together) and cut 80/20; every tenth train group validates."""
    order = np.random.default_rng(seed).permutation(len(ids))
    cut = round(0.8 * len(ids))
    train_groups = [ids[i] for i in order[:cut]]
    test_groups = [ids[i] for i in order[cut:]]
    return {
        "train": sorted(i for k, g in enumerate(train_groups) if k % 10 != 9 for i in g),
        "val": sorted(i for k, g in enumerate(train_groups) if k % 10 == 9 for i in g),
        "test": sorted(i for g in test_groups for i in g),
    }


def main(data: Path) -> None:
    nuclei = sorted(p.stem for p in (data / "nuclei" / "images").glob("*.tif"))
    wbc = [
        f"{d}/{p.stem}"
        for d in ("dataset1", "dataset2")
        for p in sorted((data / "wbc" / d / "images").glob("*.png"))
    ]
    duplicate = ["dataset1/112", "dataset1/139"]
    wbc_groups = [[i] for i in wbc if i not in duplicate] + [duplicate]
    out = HERE / "splits"
    out.mkdir(exist_ok=True)
    for name, groups in (("nuclei", [[i] for i in nuclei]), ("wbc", wbc_groups)):
        for part, members in split(groups, SEED).items():
            (out / f"{name}-{part}.txt").write_text("\n".join(members) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "data")
