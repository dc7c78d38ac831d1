"""A lossy-link emulator: rate (simulated time), loss, bit corruption, duplication, reordering; plus a UDP relay."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Link:
    """Packet-level channel model; `transmit` is deterministic for a given seed."""

    rate: float = 9600.0  # bit/s; airtime of a packet = 8 * bytes / rate (simulated, never slept)
    loss: float = 0.0  # probability that a packet is lost
    corrupt: float = 0.0  # probability that a delivered packet has 1..8 bits flipped
    duplicate: float = 0.0  # probability that a delivered packet arrives twice
    reorder: float = 0.0  # probability that a packet swaps places with the next one
    seed: int = 0
    stats: dict[str, int] = field(default_factory=lambda: dict(sent=0, lost=0, corrupted=0, duplicated=0, reordered=0))

    def __post_init__(self) -> None:
        for name in ("loss", "corrupt", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"link {name} probability must be in [0, 1]")
        if self.rate <= 0:
            raise ValueError("link rate must be positive")
        self.rng = np.random.default_rng(self.seed)
        self.clock = 0.0  # simulated seconds of airtime used so far

    def airtime(self, nbytes: int) -> float:
        """Seconds a packet of `nbytes` occupies the link."""
        return 8.0 * nbytes / self.rate

    def mangle(self, data: bytes) -> bytes | None:
        """One packet through the channel: None if lost, else possibly corrupted bytes."""
        self.stats["sent"] += 1
        if self.rng.random() < self.loss:
            self.stats["lost"] += 1
            return None
        if self.rng.random() < self.corrupt and data:
            self.stats["corrupted"] += 1
            buf = bytearray(data)
            for bit in self.rng.choice(8 * len(buf), size=min(8 * len(buf), int(self.rng.integers(1, 9))), replace=False):
                buf[bit // 8] ^= 1 << (bit % 8)
            return bytes(buf)
        return data

    def transmit(self, pkts: list[bytes]) -> list[tuple[float, bytes]]:
        """Send packets back to back; return (simulated arrival time, bytes) in arrival order."""
        out: list[tuple[float, bytes]] = []
        for data in pkts:
            self.clock += self.airtime(len(data))
            got = self.mangle(data)
            if got is None:
                continue
            out.append((self.clock, got))
            if self.rng.random() < self.duplicate:
                self.stats["duplicated"] += 1
                out.append((self.clock, got))
        i = 0
        while i < len(out) - 1:
            if self.rng.random() < self.reorder:
                self.stats["reordered"] += 1
                (ta, a), (tb, b) = out[i], out[i + 1]
                out[i], out[i + 1] = (ta, b), (tb, a)
                i += 1
            i += 1
        return out


class UdpRelay:
    """Forward UDP datagrams from a 127.0.0.1 port to a target through a Link (loopback only, threaded)."""

    def __init__(self, target: tuple[str, int], link: Link, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "localhost") or target[0] not in ("127.0.0.1", "localhost"):
            raise ValueError("the relay is for loopback tests only")
        self.link, self.target = link, target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> UdpRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()

    def _run(self) -> None:
        held: bytes | None = None  # a packet held back to be reordered after the next
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except (TimeoutError, OSError):
                continue
            got = self.link.mangle(data)
            if got is None:
                continue
            copies = [got] * (2 if self.link.rng.random() < self.link.duplicate else 1)
            if held is None and self.link.rng.random() < self.link.reorder:
                held = got
                continue
            for c in copies:
                self.sock.sendto(c, self.target)
            if held is not None:
                self.sock.sendto(held, self.target)
                held = None
            time.sleep(0)
