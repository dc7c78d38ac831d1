"""Ship trained weights: store them as float16 in weights/NAME.pt with their card, and re-measure the shipped file.

    python tools/ship_weights.py RUN.pt NAME

Floating-point tensors become float16 (half the bytes; `models.load` casts them back to float32); integer buffers
stay. The clean accuracy of the float16 file on the run's own test set is measured again and added to the card
beside the float32 figure, so the card describes the file that ships.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from symcodec.atomic import atomic_write
from symcodec.classify import models
from symcodec.data.sources import load_arrays

LIMIT = 4 * 2**20  # shipped weights stay under 4 MiB


def main(argv: list[str] | None = None) -> int:
    """Convert, save, re-measure, write the card."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a .pt written by `symcodec train-classifier` (its .md card beside it)")
    ap.add_argument("name", help="shipped name: writes weights/NAME.pt and weights/NAME.md")
    args = ap.parse_args(argv)
    src = Path(args.run)
    model = models.load(src)
    dst = models.weights_dir() / f"{args.name}.pt"
    models.save(model, dst, {**model.meta, "stored_as": "float16"}, half=True)
    size = dst.stat().st_size
    if size > LIMIT:
        dst.unlink()
        print(f"{src}: {size:,} bytes as float16, over the {LIMIT:,}-byte limit", file=sys.stderr)
        return 1
    model = models.load(dst)
    meta = model.meta
    x, y, _ = load_arrays(meta["test"])
    acc = float((models.predict(model, x, 500) == y).mean() * 100)
    was = meta["test_accuracy"]["clean"]
    card = src.with_suffix(".md").read_text().replace(f"# {src.stem}\n", f"# {args.name}\n", 1).rstrip("\n")
    card += (f"\n- Test accuracy of this file, shipped as float16 ({size:,} bytes, `python tools/ship_weights.py "
             f"{src.name} {args.name}`), on the same {len(y)} held-out images: clean **{acc:.2f}%** (float32: {was:.2f}%).\n")
    atomic_write(dst.with_suffix(".md"), card.encode())
    print(f"{dst}: {size:,} bytes, clean {acc:.2f}% (float32 {was:.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
