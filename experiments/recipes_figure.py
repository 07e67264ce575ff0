"""Side by side, layer by layer: the images of two recipes' studies on the same filters.

Each row is one layer: the first recipe's images of filters 0..N-1 (the left half) and the
second's (the right half), each image the stored PNG of that layer's chosen trial (the only
trial of a scored hand-made recipe, the best trial of a tuned one). For docs/recipes.md:

    python experiments/recipes_figure.py blog-vgg16-scored tune-vgg16-hed \\
        docs/recipes/vgg16_blog_vs_tuned.png --layers block1_conv1 ... block5_conv3
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from vissearch.imageio import write_png
from vissearch.study import store


def images(study_name: str, results: str, n: int) -> list[np.ndarray]:
    study = store.open_study(study_name, None, results)
    best = store.ranked(study)[0]
    files = best.user_attrs["images"]
    out = []
    for index in range(n):
        path = store.trial_file(study, files, str(index))
        out.append(np.asarray(Image.open(path).convert("RGB")))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("left")
    p.add_argument("right", help="the second study prefix, or - for the first alone")
    p.add_argument("dest")
    p.add_argument("--layers", nargs="+", required=True)
    p.add_argument("--filters", type=int, default=4)
    p.add_argument("--results", default="results")
    p.add_argument("--titles", nargs=2, default=["the blog's table", "found by tune"])
    args = p.parse_args()
    rows = []
    for layer in args.layers:
        left = images(f"{args.left}-{layer}", args.results, args.filters)
        right = [] if args.right == "-" else images(f"{args.right}-{layer}", args.results,
                                                    args.filters)
        rows.append((layer, left, right))
    side = rows[0][1][0].shape[0]
    gap, label, head = 4, 110, 22
    halves = 1 if args.right == "-" else 2
    width = label + halves * args.filters * (side + gap) + 3 * gap
    height = head + len(rows) * (side + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    half = args.filters * (side + gap)
    for i, title in enumerate(args.titles[:halves]):
        draw.text((label + i * (half + 3 * gap) + 4, 4), title, fill="black")
    for r, (layer, left, right) in enumerate(rows):
        y = head + r * (side + gap)
        draw.text((4, y + side // 2 - 6), layer, fill="black")
        for i, img in enumerate(left + right):
            x = label + i * (side + gap) + (3 * gap if i >= args.filters else 0)
            canvas.paste(Image.fromarray(img), (x, y))
    write_png(args.dest, np.asarray(canvas))
    print(f"wrote {args.dest}: {len(rows)} layers x {2 * args.filters} images")


if __name__ == "__main__":
    main()
