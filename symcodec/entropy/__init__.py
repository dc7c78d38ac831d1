"""Entropy models (formats/sym.md section 5): one module per model, one protocol (`base.EntropyModel`), one rANS coder.

`MODELS` maps HEAD's entropy model id to its class; `CONTEXT_TAGS` maps a patch codebook's context-model
chunk (CTXM, PPMT) to its class. Model 1's table is a patch codebook's CNTS chunk; model 4 (TCTX) belongs to
transform codebooks.
"""
from __future__ import annotations

from .base import EntropyModel
from .coef import CoefModel
from .context import ContextModel
from .ppm import PPMModel
from .static import StaticModel

MODELS: dict[int, type[EntropyModel]] = {m.model_id: m for m in (StaticModel, ContextModel, PPMModel, CoefModel)}
CONTEXT_TAGS: dict[bytes, type[EntropyModel]] = {m.tag: m for m in (ContextModel, PPMModel)}

__all__ = ["CONTEXT_TAGS", "MODELS", "CoefModel", "ContextModel", "EntropyModel", "PPMModel", "StaticModel"]
