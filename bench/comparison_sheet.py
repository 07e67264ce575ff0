"""One comparison sheet for the docs: a row per method, a column per class, each cell captioned
``method: class``, from folders of ``target_NNNN.png`` (``bench/readers_unseen.py`` output).

    python bench/comparison_sheet.py results/unseen4 20,48,259,62,917,582 --side 224 \\
        vissearch-shipped xplique-maco xplique-optimize \\
        --out docs/readers/draw4_comparison.png
    python bench/comparison_sheet.py results/unseen4 20,48,259,62,917,582 --side 224 \\
        "vissearch 160 px=vissearch-shipped-160x8" "vissearch 224 px=vissearch-shipped" \\
        "Xplique maco=xplique-maco" --out docs/readers/draw4_160_comparison.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sheets import cell

from vissearch.imageio import grid, write_png
from vissearch.models import labels

MARGIN = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="the draw's folder of method folders")
    ap.add_argument("classes", help="class indices, comma-separated")
    ap.add_argument("methods", nargs="+",
                    help="method folders, one row each; LABEL=FOLDER captions the row LABEL")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--side", type=int, default=256, help="cell side in pixels")
    args = ap.parse_args()
    idx, names = [int(c) for c in args.classes.split(",")], labels.imagenet()
    rows = []
    for method in args.methods:
        label, _, folder = method.rpartition("=")
        row = []
        for i in idx:
            square = cell(args.folder / folder / f"target_{i:04d}.png", args.side)
            row.append(grid([square], captions=[f"{label or folder}: {names[i]}"]))
            row.append(np.zeros((row[-1].shape[0], MARGIN, 3), np.uint8))
        rows.append(np.concatenate(row[:-1], axis=1))
        rows.append(np.zeros((MARGIN, rows[-1].shape[1], 3), np.uint8))
    write_png(args.out, np.concatenate(rows[:-1], axis=0))
    print(args.out)


if __name__ == "__main__":
    main()
