"""The centre of already rendered images, enlarged back to their side: what ``frame: F`` does
to a render, done to PNGs (another method's, or vissearch's before ``frame`` existed).

    python bench/framed.py results/unseen4/xplique-maco results/unseen4/xplique-maco-framed 0.6

Each ``target_NNNN.png`` of SOURCE is cut to its centre F of the side and resized back with
Lanczos into DEST. The engine's ``frame`` cuts the canvas itself, before any resizing: the same
centre, a little sharper. The framing sheets of docs/readers.md (tune3e, unseen4c) used this.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("frame", type=float, help="share of the side kept, 0..1")
    args = ap.parse_args()
    if not 0 < args.frame <= 1:
        raise SystemExit(f"frame {args.frame}: a share of the side, above 0 and at most 1")
    args.dest.mkdir(parents=True, exist_ok=True)
    files = sorted(args.source.glob("target_*.png"))
    for path in files:
        img = Image.open(path).convert("RGB")
        side = img.size[0]
        cut = round(side * (1 - args.frame) / 2)
        img.crop((cut, cut, side - cut, side - cut)).resize((side, side), Image.LANCZOS).save(
            args.dest / path.name)
    print(f"{len(files)} images -> {args.dest}")


if __name__ == "__main__":
    main()
