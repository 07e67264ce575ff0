"""Tile the runs of one experiment output folder into one labelled image for docs/: each run
is a strip of its per-target PNGs, labelled with the run's name.

    python experiments/compose.py EXPERIMENT.yaml OUT_DIR docs/experiments/NAME.png [--cols 3]
"""

from __future__ import annotations

import argparse
import glob

import numpy as np
from PIL import Image, ImageDraw

from vissearch.experiment import expand_runs, load
from vissearch.imageio import grid, read_png, write_png


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment")
    ap.add_argument("out_dir")
    ap.add_argument("dest")
    ap.add_argument("--cols", type=int, default=3)
    args = ap.parse_args()
    names = [name for name, *_ in expand_runs(load(args.experiment))]
    tiles = []
    for name in names:
        targets = sorted(glob.glob(f"{args.out_dir}/{name}/target_*.png"))
        img = grid([read_png(t) for t in targets])
        label = Image.new("RGB", (img.shape[1], 16), "white")
        ImageDraw.Draw(label).text((2, 2), name, fill="black")
        tiles.append(np.concatenate([np.asarray(label), img]))
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = -(-len(tiles) // args.cols)
    sheet = np.full((rows * (h + 6), args.cols * (w + 6), 3), 255, np.uint8)
    for k, t in enumerate(tiles):
        i, j = divmod(k, args.cols)
        sheet[i * (h + 6): i * (h + 6) + t.shape[0], j * (w + 6): j * (w + 6) + t.shape[1]] = t
    write_png(args.dest, sheet)


if __name__ == "__main__":
    main()
