"""What every compiled kernel shares: numba's options and a prefetch instruction."""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# cached to disk, released GIL, no bounds checks (every kernel's caller proves its indices)
JIT = {"cache": True, "nogil": True, "boundscheck": False}


def cache_is_warm() -> bool:
    """Whether numba has cached compiled kernels of this package on disk (else the first call compiles, ~20 s)."""
    import os
    from pathlib import Path

    from numba.core import config

    if config.CACHE_DIR:  # numba then caches only there
        roots = [Path(config.CACHE_DIR)]
    else:  # beside the sources, or a user folder when they are read-only
        roots = [Path(__file__).resolve().parent, Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"]
    for root in roots:
        try:
            if next(root.rglob("*.nbi"), None) is not None:
                return True
        except OSError:
            continue
    return False


@intrinsic
def prefetch(typingctx, addr):  # pragma: no cover - compiled
    """Prefetch the cache line at a byte address (LLVM's llvm.prefetch: read, high locality, data).

    Unlike a load whose value is summed and kept ("touching"), a prefetch retires at once, so a loop of
    them can have many more cache misses in flight. Use as prefetch(arr.ctypes.data + offset_in_bytes).
    """
    def codegen(context, builder, signature, args):
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(fn, [builder.inttoptr(args[0], i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(types.intp), codegen
