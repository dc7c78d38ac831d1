"""Reassembly of streamed images: duplicates, reordering, timeouts, concealment, atomic output, classification."""
from __future__ import annotations

import io
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from PIL import Image

from ..atomic import atomic_write
from ..codebook import registry
from ..codebook.codebook import Codebook
from ..codec.encoder import encode
from ..codec.symbols import reconstruct
from ..errors import CodebookError, SymcodecError
from . import bands
from . import packets as pk

MAX_PENDING = 256
KEEP_FINISHED = 4096
MAX_PIXELS = 1 << 22  # default budget of one streamed image (2048 x 2048), below the format's 2^24 cap
MAX_SENDER_BYTES = 64 << 20  # default bytes of unfinished images one sender may have held


def _signature(p: pk.Packet) -> tuple[int, int, bytes]:
    """What every packet of one image must share: kind, count, descriptor (FILE: the file size)."""
    return (p.type, p.count, p.desc[:4]) if p.type == pk.FILE else (pk.BAND, p.count, p.desc)


@dataclass
class _Image:
    first: pk.Packet
    sender: Any = None
    held: int = 0  # payload bytes kept for it (counted against its sender)
    parts: dict[int, bytes] = field(default_factory=dict)
    parity: dict[int, tuple[int, list[int], bytes]] = field(default_factory=dict)
    recovered: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.first.count


@dataclass
class Delivered:
    """One image (or file) the receiver finished: what arrived and what it wrote."""

    name: str
    type: int
    packets: int
    received: int
    symbols: int = 0
    symbols_received: int = 0
    bad_bands: int = 0
    recovered: int = 0  # bands restored from parity packets
    ok: bool = False  # an output was produced (for FILE: the whole file arrived)
    path: str | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)
    symbols_array: np.ndarray | None = field(default=None, repr=False)
    pred: int | None = None
    pred_class: str | None = None  # the model's name for `pred`, when it has class names
    first_packet_s: float = 0.0  # receiver clock (seconds) at its first packet
    last_packet_s: float = 0.0  # and at its last
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (no arrays)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("pixels", "symbols_array")}


class Receiver:
    """Feed it packets (bytes); it finishes images when complete, superseded, idle too long, or at close()."""

    def __init__(self, out: str | Path | None = None, codebook: Codebook | str | None = None, classify: Any = None,
                 image_timeout: float = 10.0, keep_pixels: bool = False, max_pixels: int = MAX_PIXELS,
                 max_pending: int = MAX_PENDING, max_bytes_per_sender: int = MAX_SENDER_BYTES) -> None:
        """Budgets, checked on each packet before any work proportional to what it claims: `max_pixels` per
        streamed image, `max_pending` unfinished images (the oldest is finished to make room), and
        `max_bytes_per_sender` payload bytes held in unfinished images per sender (`feed(..., sender=)`)."""
        self.max_pixels, self.max_pending, self.max_bytes_per_sender = max_pixels, max_pending, max_bytes_per_sender
        self._held: dict[Any, int] = {}
        self.out = Path(out) if out is not None else None
        self.codebook = registry.get(codebook) if codebook is not None else None
        self.classify = classify
        self.image_timeout = image_timeout
        self.keep_pixels = keep_pixels
        self.pending: OrderedDict[tuple[int, int], _Image] = OrderedDict()
        self.finished: OrderedDict[tuple[int, int], None] = OrderedDict()
        self.done: list[Delivered] = []
        self.counts = dict(packets=0, bytes=0, accepted=0, invalid=0, duplicate=0, conflicting=0, late=0, refused=0)
        self._cbs: dict[bytes, Codebook] = {}
        self.labels: dict[str, int] = {}
        self.sources: dict[str, dict[str, Any]] = {}  # name -> the sender's key and label (send --manifest)

    # -- input ----------------------------------------------------------------------------
    def feed(self, data: bytes, now: float = 0.0, sender: Any = None) -> pk.Packet | None:
        """One datagram (from `sender`, e.g. its address); invalid ones (bad CRC, garbage, truncated) are counted and dropped."""
        self.counts["packets"] += 1
        self.counts["bytes"] += len(data)
        try:
            p = pk.parse(data)
        except SymcodecError:
            self.counts["invalid"] += 1
            return None
        self.add(p, now, sender)
        return p

    def held_bytes(self, sender: Any = None) -> int:
        """Payload bytes held in `sender`'s unfinished images."""
        return self._held.get(sender, 0)

    def _within_budget(self, p: pk.Packet, img: _Image | None, sender: Any) -> bool:
        if img is None and p.type != pk.FILE:
            geo = p.geometry()
            if geo.width * geo.height > self.max_pixels:
                return False
        return self._held.get(sender, 0) + len(p.payload) <= self.max_bytes_per_sender

    def add(self, p: pk.Packet, now: float = 0.0, sender: Any = None) -> None:
        """One already-validated packet."""
        if p.key in self.finished:
            self.counts["late"] += 1
            return
        img = self.pending.get(p.key)
        if not self._within_budget(p, img, sender if img is None else img.sender):
            self.counts["refused"] += 1
            return
        if img is None:
            img = self.pending[p.key] = _Image(p, sender, first_seen=now)
            self._supersede(p, now)
        elif _signature(p) != _signature(img.first):
            self.counts["conflicting"] += 1
            return
        if p.type == pk.PARITY:
            if p.index in img.parity or img.complete:
                self.counts["duplicate"] += 1
                return
            self.counts["accepted"] += 1
            img.parity[p.index] = p.parity_fields()
            self._hold(img, len(p.payload))
            img.last_seen = now
            self._repair(p.key, img)
            return
        if p.index in img.parts:
            self.counts["duplicate"] += 1
            return
        if p.type == pk.FILE and p.file_fields()[1] in self._offsets(img):
            self.counts["conflicting"] += 1
            return
        self.counts["accepted"] += 1
        img.parts[p.index] = p.payload if p.type == pk.BAND else p.desc[4:8] + p.payload
        self._hold(img, len(p.payload))
        img.last_seen = now
        self._repair(p.key, img)
        while len(self.pending) > self.max_pending:
            self._finish(next(iter(self.pending)))

    def _hold(self, img: _Image, n: int) -> None:
        img.held += n
        self._held[img.sender] = self._held.get(img.sender, 0) + n

    def _repair(self, key: tuple[int, int], img: _Image) -> None:
        """Restore bands from parity where possible; finish the image once every band is in."""
        if img.parity and not img.complete:
            img.recovered += bands.recover(img.first.count, img.parts, img.parity)
        if img.complete:
            self._finish(key)

    @staticmethod
    def _offsets(img: _Image) -> set[int]:
        return {int.from_bytes(v[:4], "little") for v in img.parts.values()} if img.first.type == pk.FILE else set()

    def _supersede(self, p: pk.Packet, now: float) -> None:
        """A stream has moved at least two images on: its older pending images will get no more packets."""
        for key in [k for k in self.pending if k[0] == p.stream and 2 <= (p.image - k[1]) % 65536 < 32768]:
            self._finish(key)

    def poll(self, now: float) -> None:
        """Finish images that have been idle longer than the image timeout."""
        for key in [k for k, v in self.pending.items() if now - v.last_seen > self.image_timeout]:
            self._finish(key)

    def close(self) -> list[Delivered]:
        """Finish everything still pending; return all delivered records."""
        for key in list(self.pending):
            self._finish(key)
        return self.done

    # -- output ---------------------------------------------------------------------------
    def _codebook(self, prefix: bytes) -> Codebook:
        if self.codebook is not None:
            if self.codebook.id[:8] != prefix:
                raise CodebookError(f"stream needs codebook {prefix.hex()}, not {self.codebook.short_id}")
            return self.codebook
        if prefix not in self._cbs:
            self._cbs[prefix] = registry.get(prefix.hex())
        return self._cbs[prefix]

    def _finish(self, key: tuple[int, int]) -> None:
        img = self.pending.pop(key)
        left = self._held.get(img.sender, 0) - img.held
        if left > 0:
            self._held[img.sender] = left
        else:
            self._held.pop(img.sender, None)
        self.finished[key] = None
        while len(self.finished) > KEEP_FINISHED:
            self.finished.popitem(last=False)
        name = f"{key[0]:04x}-{key[1]:05d}"
        kind = pk.FILE if img.first.type == pk.FILE else pk.BAND
        rec = Delivered(name, kind, img.first.count, len(img.parts) - img.recovered, recovered=img.recovered,
                        first_packet_s=round(img.first_seen, 3), last_packet_s=round(img.last_seen, 3))
        try:
            if kind == pk.BAND:
                self._finish_band(img, rec)
            else:
                self._finish_file(img, rec)
        except SymcodecError as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
        if not self.keep_pixels:
            rec.pixels = rec.symbols_array = None
        self.done.append(rec)

    def _finish_band(self, img: _Image, rec: Delivered) -> None:
        geo = img.first.geometry()
        cb = self._codebook(geo.cb_prefix)
        sym, mask, rec.bad_bands = bands.decode_bands(geo, img.first.count, img.parts, cb)
        rec.symbols = geo.planes * geo.grid[0] * geo.grid[1]
        if mask is None:  # no band decoded
            return
        rec.symbols_received = int(mask.sum())
        sym = bands.conceal(sym, mask, cb)
        px = reconstruct(sym, cb, shape=(geo.height, geo.width, geo.planes))
        px = px[:, :, 0] if geo.planes == 1 else px
        rec.ok, rec.pixels, rec.symbols_array = True, px, sym
        if self.out is not None:
            rec.path = str(self._write(rec.name, px, cb, rec))
        self._classify(rec)

    def _finish_file(self, img: _Image, rec: Delivered) -> None:
        size = img.first.file_fields()[0]
        parts = sorted((int.from_bytes(v[:4], "little"), v[4:]) for v in img.parts.values())
        data = b"".join(v for _, v in parts)
        pos = [o for o, _ in parts]
        ends = list(np.cumsum([len(v) for _, v in parts]))
        if not (img.complete and len(data) == size and pos == [0, *ends[:-1]]):
            return
        rec.ok = True
        ext = ".jpg" if data[:2] == b"\xff\xd8" else ".png" if data[:4] == b"\x89PNG" else ".sym" if data[:4] == b"\x89SYM" else ".bin"
        if self.out is not None:
            path = self.out / (rec.name + ext)
            atomic_write(path, data)
            rec.path = str(path)
        try:
            with Image.open(io.BytesIO(data)) as im:
                rec.pixels = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
        except Exception:  # noqa: BLE001 - not an image Pillow reads: delivered as a plain file
            return
        self._classify(rec)

    def _write(self, name: str, px: np.ndarray, cb: Codebook, rec: Delivered) -> Path:
        """PNG of the (concealed) image, and a .sym re-encoding of it with the same codebook."""
        assert self.out is not None
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, format="PNG")
        atomic_write(self.out / f"{name}.png", buf.getvalue())
        missing = str(rec.symbols - rec.symbols_received)
        atomic_write(self.out / f"{name}.sym", encode(px, cb, text={"stream-symbols-missing": missing}))
        return self.out / f"{name}.png"

    def _classify(self, rec: Delivered) -> None:
        if self.classify is None or rec.pixels is None:
            return
        import torch

        x = torch.from_numpy(np.ascontiguousarray(rec.pixels)).float().div(255)
        x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
        try:
            with torch.no_grad():
                rec.pred = int(self.classify(x).argmax(1).item())
            classes = list(getattr(self.classify, "meta", {}).get("classes", []) or [])
            rec.pred_class = classes[rec.pred] if rec.pred < len(classes) else None
        except RuntimeError as exc:  # e.g. the model does not take this image size
            rec.error = f"classifier: {str(exc).splitlines()[0]}"

    # -- summary --------------------------------------------------------------------------
    def set_labels(self, manifest: dict[str, Any]) -> None:
        """True classes from a `send --manifest` file: label strings map through the model's class list
        (meta["classes"]) if it has one, digits map to themselves, else the sorted set of labels is used."""
        items = manifest.get("items", [])
        for it in items:  # the sender's own names and labels, for the report
            self.sources[f"{manifest['stream']}-{int(it['image']):05d}"] = {"key": it.get("key"), "label": it.get("label")}
        classes = list(getattr(self.classify, "meta", {}).get("classes", []) or [])
        names = sorted({str(it["label"]) for it in items if it.get("label") is not None})
        for it in items:
            lab = it.get("label")
            if lab is None:
                continue
            lab = str(lab)
            idx = classes.index(lab) if lab in classes else int(lab) if lab.isdigit() else names.index(lab)
            self.labels[f"{manifest['stream']}-{int(it['image']):05d}"] = idx

    def accuracy(self) -> dict[str, Any] | None:
        """Top-1 accuracy of the on-arrival predictions against the manifest labels (lost images count as wrong)."""
        if self.classify is None or not self.labels:
            return None
        hits = sum(1 for r in self.done if r.pred is not None and self.labels.get(r.name) == r.pred)
        seen = sum(1 for r in self.done if r.pred is not None and r.name in self.labels)
        return {"labelled": len(self.labels), "classified": seen, "correct": hits,
                "accuracy_classified": hits / seen if seen else None, "accuracy_all": hits / len(self.labels)}

    def report(self) -> dict[str, Any]:
        """Totals and per-image records."""
        d = self.done
        sym = sum(r.symbols for r in d)
        return {
            **self.counts,
            "images": len(d),
            "images_ok": sum(r.ok for r in d),
            "images_complete": sum(r.received + r.recovered == r.packets for r in d),
            "packets_missing": sum(r.packets - r.received for r in d),
            "bands_recovered": sum(r.recovered for r in d),
            "symbols": sym,
            "symbols_received": sum(r.symbols_received for r in d),
            "accuracy": self.accuracy(),
            "items": [{**r.as_dict(), **self.sources.get(r.name, {})} for r in d],
        }

    def status(self) -> str:
        """A one-line live status."""
        c = self.counts
        return (f"images {len(self.done)} (+{len(self.pending)} pending) | packets {c['accepted']} ok, "
                f"{c['invalid']} bad, {c['duplicate']} dup | missing {sum(r.packets - r.received for r in self.done)}")

    def save_report(self, path: str | Path) -> None:
        """Write the report as JSON, atomically."""
        atomic_write(Path(path), json.dumps(self.report(), indent=2).encode())
