"""Sender and receiver loops over UDP (one packet per datagram) and TCP (packets back to back), 127.0.0.1 or LAN."""
from __future__ import annotations

import io
import json
import os
import queue
import secrets
import selectors
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tqdm import tqdm

from ..codebook import registry
from ..codebook.codebook import Codebook, TransformCodebook
from ..codec.decoder import check_budget, codebook_for, coded_bytes, decode_symbols, read
from ..codec.encoder import encoder_for
from ..codec.files import open_image
from ..data.sources import count_samples, iter_samples
from ..errors import CodebookError, FormatError, SymcodecError
from ..format.sym import is_sym
from . import bands
from . import packets as pk
from .receiver import MAX_PENDING, MAX_PIXELS, MAX_SENDER_BYTES, Receiver


def parse_address(spec: str) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port)."""
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise FormatError(f"address {spec!r} is not HOST:PORT")
    return host or "127.0.0.1", int(port)


def iter_items(src: str | os.PathLike[str]) -> Iterator[tuple[str, Any, bytes | None, np.ndarray | None]]:
    """(key, label, file bytes, pixels) for an image file, a .sym file, a folder or a tar of them."""
    p = Path(src)
    if p.is_file() and not p.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")) and "idx3" not in p.name:
        yield p.name, None, p.read_bytes(), None
        return
    for s in iter_samples(p):
        yield s.key, s.label, s.data, s.pixels


def _count_items(src: str | os.PathLike[str]) -> int | None:
    """How many items `iter_items` will yield, from names and headers only (None if that would need decompressing)."""
    p = Path(src)
    if p.is_file() and not p.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")) and "idx3" not in p.name:
        return 1
    return count_samples(p)


def _symbols(data: bytes | None, pixels: np.ndarray | None, cb: Codebook) -> tuple[np.ndarray, Codebook, int, int]:
    """Symbols (P,gh,gw), their codebook, W and H; a .sym file is sent without re-quantising; alpha is dropped.

    BAND packets carry equal-sized planes (formats/stream.md), so colour-1 (ycc420) codebooks are refused.
    """
    if data is not None and is_sym(data):
        f = read(data)
        check_budget(f.header, coded_bytes(f))
        fcb = codebook_for(f)
        _per_plane(fcb)
        return np.stack(decode_symbols(f, fcb)), fcb, f.header.width, f.header.height
    _per_plane(cb)
    if pixels is None:
        im = open_image(io.BytesIO(data or b""))
        pixels = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB", "LA", "RGBA") else im)
    a = pixels if pixels.ndim == 3 else pixels[:, :, None]
    mode = "L" if a.shape[2] in (1, 2) else "RGB"
    a = np.ascontiguousarray(a[:, :, :1] if mode == "L" else a[:, :, :3])
    enc = encoder_for(cb, a.shape[1], a.shape[0], mode)
    return enc.symbols(a[None])[0].reshape(enc.planes, *enc.grids[0]), cb, a.shape[1], a.shape[0]


def _per_plane(cb: Codebook | TransformCodebook) -> None:
    if isinstance(cb, TransformCodebook) or cb.colour != 0:
        kind = "a transform codebook" if isinstance(cb, TransformCodebook) else "ycc420"
        raise CodebookError(f"codebook {cb.name or cb.short_id} is {kind}; stream packets carry per-plane (colour 0) patch codebooks")


def item_packets(data: bytes | None, pixels: np.ndarray | None, cb: Codebook, stream: int, image: int,
                 size: int = pk.DEFAULT_SIZE, raw: bool = False, fec: int = 0) -> list[bytes]:
    """Packets for one item: BAND (+ PARITY if fec) packets of its symbols, or (raw) FILE packets of its bytes."""
    if raw:
        if data is None:
            raise FormatError("--raw needs files, not decoded arrays (MNIST idx)")
        return pk.file_packets(data, stream, image, size)
    sym, scb, w, h = _symbols(data, pixels, cb)
    return bands.encode_bands(sym, scb, w, h, stream, image, size, fec=fec)


def send(src: str | os.PathLike[str], to: str, rate: float | None = None, size: int = pk.DEFAULT_SIZE,
         tcp: bool = False, codebook: str | None = None, raw: bool = False, limit: int | None = None,
         progress: bool = True, manifest: str | os.PathLike[str] | None = None, fec: int = 0) -> dict[str, Any]:
    """Packetise every image of `src` and send it, paced to `rate` bit/s (None: as fast as possible).

    `manifest`: also write JSON lines there ({stream}, then {image, key, label} per image, each before its
    packets), for `receive --labels`.
    `fec`: add one XOR parity packet per `fec` bands (restores one lost band per group; 0 = off).
    """
    host, port = parse_address(to)
    cb = registry.get(codebook)
    stream = secrets.randbelow(65536)
    stats: dict[str, Any] = dict(stream=f"{stream:04x}", images=0, packets=0, bytes=0, failed=0)
    sock = socket.create_connection((host, port), timeout=10) if tcp else socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0 = time.monotonic()
    airtime = 0.0
    log = None
    try:
        if manifest is not None:
            log = open(manifest, "w", encoding="utf-8")  # noqa: SIM115 - an append-only journal, closed below
            log.write(json.dumps({"stream": stats["stream"]}) + "\n")
        total = _count_items(src) if progress else None
        if total is not None and limit is not None:
            total = min(total, limit)
        for key, label, data, pixels in tqdm(iter_items(src), total=total, desc="send", unit="img", disable=not progress, file=sys.stderr):
            if limit is not None and stats["images"] >= limit:
                break
            try:
                pkts = item_packets(data, pixels, cb, stream, stats["images"], size, raw, fec)
            except SymcodecError as exc:
                stats["failed"] += 1
                print(f"skipped {key}: {exc}", file=sys.stderr)
                continue
            if log is not None:  # before the packets, so a receiver that finishes the image can read it
                log.write(json.dumps({"image": stats["images"], "key": key, "label": label}) + "\n")
                log.flush()
            for p in pkts:
                if rate:
                    airtime += 8 * len(p) / rate
                    delay = t0 + airtime - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if tcp:
                    sock.sendall(p)
                else:
                    sock.sendto(p, (host, port))
                stats["packets"] += 1
                stats["bytes"] += len(p)
            stats["images"] += 1
    finally:
        sock.close()
        if log is not None:
            log.close()
    stats["seconds"] = round(time.monotonic() - t0, 3)
    return stats


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A `send --manifest` journal as {stream, items}; a torn last line (sender still writing) is skipped."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    if not lines or "stream" not in lines[0]:
        raise FormatError(f"{path} is not a send --manifest file")
    return {"stream": lines[0]["stream"], "items": [x for x in lines[1:] if "image" in x]}


def _peak_rss_mib() -> float | None:
    """This process's peak resident memory in MiB (None where the platform does not say).

    Linux: VmHWM, which starts afresh at exec (getrusage's ru_maxrss keeps the high-water mark of the process
    that forked it, so a receiver started from a 1.6 GB test runner reported 1.6 GB)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


RCVBUF = 8 << 20  # UDP socket buffer asked for (the kernel may grant less: net.core.rmem_max)
MAX_QUEUED = 64 << 20  # bytes received but not yet processed; beyond it datagrams are dropped (and counted)
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40 if sys.platform.startswith("linux") else None)


class _Listener(threading.Thread):
    """Receives on its own thread, so that decoding, writing and classifying never delay a read.

    UDP datagrams and TCP bytes go to a queue as (sender, bytes or None at end of a connection, time);
    a UDP socket asks for an 8 MiB buffer and, on Linux, reports the kernel's own drops (SO_RXQ_OVFL).
    """

    def __init__(self, lsock: socket.socket, tcp: bool) -> None:
        super().__init__(name="symcodec-receive", daemon=True)
        self.lsock, self.tcp = lsock, tcp
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.queued = 0  # bytes in the queue (approximate: updated by both threads under the GIL)
        self.counts = dict(connections=0, dropped_queue_full=0, dropped_by_kernel=0, socket_buffer=0)
        self.stop = threading.Event()
        self._ovfl = False
        if not tcp:
            try:
                lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            except OSError:
                pass
            self.counts["socket_buffer"] = lsock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            if _SO_RXQ_OVFL is not None:
                try:
                    lsock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
                    self._ovfl = True
                except OSError:
                    pass

    def _put(self, sender: Any, data: bytes | None) -> None:
        if data is not None and self.queued + len(data) > MAX_QUEUED:
            self.counts["dropped_queue_full"] += 1
            return
        self.queued += len(data or b"")
        self.queue.put((sender, data, time.monotonic()))

    def _recv_udp(self) -> None:
        while True:
            try:
                if self._ovfl:
                    data, anc, _, addr = self.lsock.recvmsg(65535, socket.CMSG_SPACE(4))
                    for level, kind, val in anc:
                        if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(val) >= 4:
                            self.counts["dropped_by_kernel"] = int.from_bytes(val[:4], sys.byteorder)
                else:
                    data, addr = self.lsock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            self._put(addr, data)

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.lsock, selectors.EVENT_READ, None)
        try:
            while not self.stop.is_set():
                for skey, _ in sel.select(timeout=0.1):
                    sock = skey.fileobj
                    if sock is self.lsock and self.tcp:
                        conn, addr = self.lsock.accept()
                        conn.setblocking(False)
                        self.counts["connections"] += 1
                        sel.register(conn, selectors.EVENT_READ, (addr, self.counts["connections"]))
                    elif sock is self.lsock:
                        self._recv_udp()
                    else:
                        try:
                            data = sock.recv(1 << 16)
                        except OSError:
                            data = b""
                        self._put(skey.data, data or None)
                        if not data:  # sender gone (maybe mid-image): its pending images finish by timeout
                            sel.unregister(sock)
                            sock.close()
        finally:
            for skey in list(sel.get_map().values()):
                if skey.data is not None:
                    self._put(skey.data, None)
                skey.fileobj.close()  # type: ignore[union-attr]
            sel.close()


def receive(listen: str, out: str | os.PathLike[str], tcp: bool = False, timeout: float = 30.0,
            expect: int | None = None, classify: Any = None, codebook: str | None = None,
            image_timeout: float = 5.0, status: bool = True, ready: Any = None,
            labels: str | os.PathLike[str] | None = None, max_pixels: int = MAX_PIXELS,
            max_pending: int = MAX_PENDING, max_bytes_per_sender: int = MAX_SENDER_BYTES) -> dict[str, Any]:
    """Receive until `expect` images are done, nothing arrives for `timeout` s (0: never) or Ctrl-C; write report.json.

    `ready`, if given, is called with the bound (host, port) once packets can arrive (port 0 picks one).
    `labels`: a manifest written by `send --manifest`; with `classify`, the report then has the accuracy.
    `max_pixels`, `max_pending`, `max_bytes_per_sender`: the receiver's budgets (`Receiver`). Reading runs
    on its own thread; datagrams the kernel or the queue dropped are counted in the report.
    """
    host, port = parse_address(listen)
    if isinstance(classify, str):
        import torch  # the [torch] extra: only classifying on arrival needs it

        from ..classify.models import load

        torch.set_num_threads(1)
        classify = load(classify)
    rx = Receiver(out, codebook=codebook, classify=classify, image_timeout=image_timeout, max_pixels=max_pixels,
                  max_pending=max_pending, max_bytes_per_sender=max_bytes_per_sender)
    Path(out).mkdir(parents=True, exist_ok=True)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        lsock.bind((host, port))
        if tcp:
            lsock.listen(8)
    except OSError:
        lsock.close()
        raise
    lsock.setblocking(False)
    listener = _Listener(lsock, tcp)
    deframers: dict[Any, pk.Deframer] = {}
    skipped = 0
    t_start = last = last_poll = time.monotonic()
    live = status and sys.stderr.isatty()
    told = 0  # finished images already reported on stderr (one line each when stderr is not a terminal)
    open_conns, seen_conn = 0, False
    listener.start()
    try:
        if ready is not None:
            ready(lsock.getsockname())
        while True:
            now = time.monotonic()
            if expect is not None and len(rx.done) >= expect or 0 < timeout < now - last:
                break
            if tcp and seen_conn and not open_conns and not rx.pending and now - last > min(timeout or 2.0, 2.0):
                break  # every sender has hung up and everything it sent is finished: no need to wait out --timeout
            try:
                sender, data, t = listener.queue.get(timeout=0.1)
            except queue.Empty:
                data = sender = None
                t = now
            if sender is not None:
                listener.queued -= len(data or b"")
                if not tcp:
                    last = t
                    rx.feed(data, t - t_start, sender=sender)
                else:
                    if sender not in deframers:
                        open_conns, seen_conn = open_conns + 1, True
                    d = deframers.setdefault(sender, pk.Deframer())
                    if data is None:  # the connection closed: rescan its tail, then forget it
                        open_conns -= 1
                        for p in d.feed(b"", final=True):
                            rx.counts["packets"] += 1
                            rx.add(p, t - t_start, sender)
                        skipped += d.skipped + len(d.buf)
                        rx.counts["invalid"] += d.rejected
                        del deframers[sender]
                    else:
                        last = t
                        rx.counts["bytes"] += len(data)
                        for p in d.feed(data):
                            rx.counts["packets"] += 1
                            rx.add(p, t - t_start, sender)
                        rx.counts["invalid"] += d.rejected
                        d.rejected = 0
            if time.monotonic() - last_poll > 0.05:  # timeouts need no finer grain; a flood must not pay a scan per packet
                last_poll = time.monotonic()
                rx.poll(last_poll - t_start)
            if live:
                print("\r" + rx.status(), end="", file=sys.stderr, flush=True)
            elif status:
                for r in rx.done[told:]:
                    state = "ok" if r.ok else (r.error or "nothing decodable")
                    print(f"{r.name}: {r.received + r.recovered}/{r.packets} packets, {state}"
                          + (f", class {r.pred_class or r.pred}" if r.pred is not None else ""), file=sys.stderr, flush=True)
                told = len(rx.done)
    except KeyboardInterrupt:  # Ctrl-C: finish what arrived and write the report
        pass
    finally:
        listener.stop.set()
        listener.join(5)
    skipped += sum(d.skipped + len(d.buf) for d in deframers.values())
    rx.close()
    if live:
        print("\r" + rx.status(), file=sys.stderr)
    rx.counts.update(listener.counts, stream_bytes_skipped=skipped, peak_rss_mib=_peak_rss_mib(),
                     seconds=round(time.monotonic() - t_start, 3))
    if labels is not None:
        try:
            rx.set_labels(read_manifest(labels))
        except (OSError, SymcodecError, ValueError, KeyError, TypeError) as exc:  # keep the report; say why
            rx.counts["labels_error"] = f"{type(exc).__name__}: {exc}"
    rx.save_report(Path(out) / "report.json")
    return rx.report()
