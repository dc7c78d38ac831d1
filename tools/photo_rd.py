"""Rate-distortion of .sym beside JPEG, WebP, AVIF and JPEG XL on both held-out photo sets; writes results/photos/.

Usage: python tools/photo_rd.py [--out results/photos] [--qualities 10,20,...,95]
Runs `symcodec eval` (rate-distortion mode, `symcodec.bench.rd`) on the photos test split and on scikit-image's
four colour photos (astronaut, coffee, chelsea, rocket, saved as lossless PNG to a temporary folder), every
codec at every quality, and writes rd-test.json/.png and rd-skimage.json/.png, then prints the BD-rates and
the .sym ladder (bpp, PSNR-RGB, MS-SSIM per rung, means over the test photos) that README "Quality" shows.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.bench import rd  # noqa: E402
from symcodec.bench.plots import plot_rd  # noqa: E402

TEST = ROOT.parent / "shared" / "datasets" / "photos" / "test"
QUALITIES = "10,20,30,40,50,60,70,80,90,95"


def ladder(res: dict) -> str:
    """The .sym rows of a result as a markdown table: quality, bpp, PSNR-RGB, MS-SSIM."""
    r = res["results"]
    out = ["| quality | bpp | PSNR-RGB (dB) | MS-SSIM |", "|---|---|---|---|"]
    for i, c in enumerate(r["codec"]):
        if c == "sym":
            out.append(f"| {r['setting'][i][1:]} | {r['bpp'][i]:.3f} | {r['psnr-rgb'][i]:.2f} | {r['ms-ssim-rgb'][i]:.4f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "results" / "photos"))
    ap.add_argument("--qualities", default=QUALITIES)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    q = a.qualities
    codecs = [f"sym:{','.join('q' + v for v in q.split(','))}", f"jpeg:{q}", f"webp:{q}", f"avif:{q}", f"jxl:{q}"]
    import skimage.data as sd

    with tempfile.TemporaryDirectory() as tmp:
        for n in ("astronaut", "coffee", "chelsea", "rocket"):
            Image.fromarray(np.ascontiguousarray(getattr(sd, n)()[..., :3])).save(Path(tmp) / f"{n}.png")
        for name, src in (("test", TEST), ("skimage", Path(tmp))):
            print(f"== {name}: {src}", file=sys.stderr)
            res = rd.run(src, codecs)
            res["settings"]["dataset"] = "scikit-image colour photos (PNG)" if name == "skimage" else str(src.relative_to(ROOT.parent))
            res["name"] = f"symcodec-rd-photos-{name}"
            (out / f"rd-{name}.json").write_text(json.dumps(res, indent=1) + "\n")
            plot_rd(res, out / f"rd-{name}.png")
            print(f"== {name}\n{rd.summary(res)}\n\n.sym ladder ({name}, means over images):\n{ladder(res)}\n")


if __name__ == "__main__":
    main()
