"""Inference: LR scenes on the tile grid -> policy probabilities per HR patch (the :class:`PatchTable`).

Blocks of tiles are read and cut ahead of the networks (:mod:`.blocks`), run through the checkpoint's
policy and LR classifier (:mod:`.infer`), journalled block by block for ``--resume`` (:mod:`.journal`)
or spread over a Dask cluster (:mod:`.distributed`).
"""

from zoomplan.plan.inference.blocks import MIN_VALID, count_blocks, count_cloudy, cut_tiles, valid_fraction
from zoomplan.plan.inference.distributed import infer_on_cluster
from zoomplan.plan.inference.infer import (
    Inference,
    InferenceStats,
    TileModels,
    default_threads,
    infer_patches,
    merge_inferences,
)
from zoomplan.plan.inference.journal import BlockJournal, BlockResult

__all__ = [
    "MIN_VALID",
    "BlockJournal",
    "BlockResult",
    "Inference",
    "InferenceStats",
    "TileModels",
    "count_blocks",
    "count_cloudy",
    "cut_tiles",
    "default_threads",
    "infer_on_cluster",
    "infer_patches",
    "merge_inferences",
    "valid_fraction",
]
