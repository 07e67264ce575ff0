"""A recipe's class grid from images already rendered: ``FOLDER/target_NNNN.png`` of the classes
given, 2 x 2 with their ImageNet names, 512 px cells, for ``docs/recipes/NAME/grids/``.

For recipes whose images take minutes each (``maco-reference``): the grid shows images that a
bench already rendered with the recipe instead of rendering them again.

    python bench/recipe_grid.py results/unseen2/vissearch-maco-reference 2,9,116,192 \\
        docs/recipes/maco-reference/grids/classes.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sheets import cell

from vissearch.imageio import grid, write_png
from vissearch.models import labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("classes", help="class indices, comma-separated")
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    idx = [int(c) for c in args.classes.split(",")]
    names = labels.imagenet()
    cells = [cell(args.folder / f"target_{i:04d}.png", 512) for i in idx]
    write_png(args.out, grid(cells, captions=[names[i] for i in idx]))
    print(args.out)


if __name__ == "__main__":
    main()
