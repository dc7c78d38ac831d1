"""The Ray engine of `symcodec convert` (`--engine ray`): the process pool's chunks and workers, run by Ray Data.

The driver lists SRC into the same chunks as the local engine (keys, labels and `Ref`s to the bytes, a
few dozen bytes an image), one Ray Data row each. `map_batches` hands them to a pool of `ChunkEncoder`
actors, each holding the codebook and searcher (`workers._init_worker`, once per actor): an actor reads
its images' bytes itself (`Ref.read`: SRC must be at the same path on every node) and runs
`workers._work`, so each image becomes the same bytes as in the process pool. Results come back in
source order (`preserve_order`) and the driver writes them with the local engine's `ShardWriter` and
`Journal`: the same shard names, members and manifest, shards committed by rename, and a rerun resumes
after the last journaled image. A killed actor is restarted and its chunk retried by Ray; an actor on a
lost node is recreated on the nodes that remain.
"""
from __future__ import annotations

import logging
import os
import pickle
import warnings
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import ray
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import ReadTask

from ..errors import DatasetError, SymcodecError
from .listing import Work
from .workers import Plan, _init_worker, _work

def _encoder_class(plan: Plan) -> type:
    """The Ray Data actor class with `plan` built in (no constructor arguments for Ray to keep in its object store)."""

    class ChunkEncoder:
        """A Ray Data actor (process title ray::MapWorker(MapBatches(ChunkEncoder))): the codebook loaded once; a call converts a chunk."""

        def __init__(self) -> None:
            _init_worker(plan)

        def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
            return _encode_rows(batch)

    return ChunkEncoder


def _encode_rows(batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """Convert each row's chunk; return its (keys and labels, results), pickled."""
    out = []
    for blob in batch["items"]:
        items = pickle.loads(blob)
        results = _work(items)
        meta = [(key, label, None, None) for key, label, _, _ in items]
        out.append(pickle.dumps((meta, results), protocol=5))
    return {"chunk": list(batch["chunk"]), "out": out}


def _quiet_console() -> None:
    """Ray's console log handlers show only what is fatal (a failure comes back as one DatasetError line); its log files keep all."""
    for name in ("ray", "ray.data"):
        for h in logging.getLogger(name).handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                h.setLevel(logging.CRITICAL)


def _connect(address: str | None, workers: int | None) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a local one; True if this call started it."""
    if ray.is_initialized():
        return False
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    kw: dict[str, Any] = {"log_to_driver": False, "configure_logging": True, "logging_level": logging.ERROR}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **kw)
        return True
    ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **kw)
    return True


class _Listing(ray.data.Datasource):
    """SRC listed into chunks by one read task on the driver's node: rows stream out while the encoders start."""

    def __init__(self, work: Work) -> None:
        self.work = work

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        work = self.work

        def read() -> Iterator[pa.Table]:
            for i, items in enumerate(work.chunks()):
                yield pa.table({"chunk": [i], "items": [pickle.dumps(items, protocol=5)]})

        return [ReadTask(read, BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None))]


def run(plan: Plan, work: Work, workers: int | None, address: str | None, collect: Callable[[list, list], None],
        started: Callable[[], None] = lambda: None) -> None:
    """Convert what `work` lists on Ray; `collect(items, results)` is called in source order on the driver.

    `started` is called once the job is submitted (the driver then waits for the actors to start).
    """
    own = _connect(address, workers)
    try:
        n = workers if workers and workers > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = False  # ordered here: Ray would hold every output until the listing ends
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.target_max_block_size = 1  # a block per chunk: a read task would otherwise hold rows back until 128 MiB
        here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}  # the listing runs where the driver does
        ds = ray.data.read_datasource(_Listing(work), override_num_blocks=1, num_cpus=0, label_selector=here)
        ds = ds.map_batches(
            _encoder_class(plan), batch_size=1, num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=n),  # Ray Data's defaults: actors restart, their tasks retry
        )
        warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)  # a short source
        _quiet_console()
        expect, early = 0, {}  # chunks done ahead of their turn: as many as are in flight
        rows = ds.iter_rows()
        started()
        for row in rows:
            early[int(row["chunk"])] = row["out"]
            while expect in early:
                meta, results = pickle.loads(early.pop(expect))
                collect(meta, results)
                expect += 1
        if early:
            msg = f"Ray returned chunks {sorted(early)[:3]}... but never chunk {expect}"
            raise DatasetError(msg)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, SymcodecError):  # the listing's own error (a corrupt tar, a changed source)
            raise type(exc.cause)((str(exc.cause).splitlines() or [""])[0]) from None  # Ray appends retry advice
        msg = f"the Ray job failed ({type(exc.cause).__name__}: {str(exc.cause).splitlines()[0] if str(exc.cause) else ''}); rerun the same command to resume"
        raise DatasetError(msg) from None
    except ray.exceptions.RayError as exc:
        msg = f"the Ray job failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); rerun the same command to resume"
        raise DatasetError(msg) from None
    finally:
        if own:
            ray.shutdown()
