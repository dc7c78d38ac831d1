"""Does the default encode of every test photo beat Pillow's JPEG q90 of it? (smaller, at >= its PSNR - 0.5 dB)

Usage: python tools/photo_defaults.py [--json PATH]
The photos test split is read from its JPEG files (so the default keeps each file's own quantisation tables,
`symcodec.codec.choice`); scikit-image's four colour photos come as arrays (the default quality). Each is
encoded with `symcodec.encode(image)` and no other argument, and compared with Pillow's JPEG q90 of the same
pixels (4:2:0, optimised Huffman tables): bytes, and PSNR of the RGB pixels against the photo.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402

TEST = ROOT.parent / "shared" / "datasets" / "photos" / "test"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import skimage.data as sd

    items = [(f.stem, Image.open(f)) for f in sorted(TEST.glob("*.jpg"))]
    items += [(n, np.ascontiguousarray(getattr(sd, n)()[..., :3])) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    rows, ok_all = [], True
    for name, src in items:
        x = np.asarray(src.convert("RGB")) if isinstance(src, Image.Image) else src
        d = symcodec.encode(src)
        y = symcodec.decode(d)
        b = io.BytesIO()
        Image.fromarray(x).save(b, "JPEG", quality=90, optimize=True)
        j = np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))
        r = {"photo": name, "sym_bytes": len(d), "sym_psnr": psnr(x, y), "jpeg90_bytes": len(b.getvalue()), "jpeg90_psnr": psnr(x, j),
             "source": "JPEG file (its own tables)" if isinstance(src, Image.Image) else "array (PHOTO_QUALITY tables)"}
        r["ok"] = r["sym_bytes"] < r["jpeg90_bytes"] and r["sym_psnr"] >= r["jpeg90_psnr"] - 0.5
        ok_all &= r["ok"]
        rows.append(r)
        print(f"  {name[:36]:<36} .sym {r['sym_bytes']:>7} B {r['sym_psnr']:6.2f} dB | JPEG q90 {r['jpeg90_bytes']:>7} B "
              f"{r['jpeg90_psnr']:6.2f} dB | {r['sym_bytes'] / r['jpeg90_bytes']:.2f}x bytes, {r['sym_psnr'] - r['jpeg90_psnr']:+.2f} dB "
              f"{'ok' if r['ok'] else 'NOT MET'}")
    print(f"every photo smaller than JPEG q90 at >= its PSNR - 0.5 dB: {'yes' if ok_all else 'no'}")
    if a.json:
        Path(a.json).write_text(json.dumps({"name": "symcodec-photo-defaults", "description": __doc__.splitlines()[0],
                                            "rows": rows, "all_ok": ok_all}, indent=2) + "\n")


if __name__ == "__main__":
    main()
