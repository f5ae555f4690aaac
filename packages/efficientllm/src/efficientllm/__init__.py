"""EfficientLLM: pruning-aware pretraining of llama-family models.

Minimal parameter groups (attention heads with GQA, FFN channels, hidden channels) found from the model
(`efficientllm.groups`); saliency from the training step's own gradients, ranked globally across the three
types (`efficientllm.saliency`); a continuous pruning schedule that plugs into any training loop, with
optional local second-order (OBS) compensation (`efficientllm.schedule`, `efficientllm.obs`); masks between
events and physical compaction of modules and optimizer moments (`efficientllm.masks`,
`efficientllm.compaction`); export as a stock Hugging Face checkpoint, or with per-layer widths as the
`efficientllm` model type that importing this package registers with the transformers Auto classes
(`efficientllm.export`, `efficientllm.modeling`); perplexity and zero-shot multiple choice as
lm-evaluation-harness scores it (`efficientllm.evaluation`).
Reimplements Xing et al., "EfficientLLM: Scalable Pruning-Aware Pretraining
for Architecture-Agnostic Edge Language Models" (arXiv 2502.06663).

The public names below are imported on first use (`reprokit.lazy`). The per-layer model type is registered
with the transformers Auto classes as soon as transformers is imported (at once if it already is), so
``import efficientllm`` is all `from_pretrained` needs, and ``efficientllm --help`` imports no torch.
"""
# ruff: noqa: F401  (the TYPE_CHECKING imports re-export the lazy names for type checkers)

from typing import TYPE_CHECKING

from efficientllm._autoregister import register_with_transformers
from reprokit.lazy import lazy_exports

register_with_transformers()  # the "efficientllm" model type, registered when transformers loads

__version__ = "0.1.0"

_EXPORTS = {
    "efficientllm.groups": ("KINDS", "Group", "PruningSpace", "find_groups"),
    "efficientllm.state": ("PruningState", "Units"),
    "efficientllm.masks": ("MaskPlan", "apply_masks", "mask_plan"),
    "efficientllm.saliency": (
        "Candidate",
        "GroupScores",
        "SaliencyAccumulator",
        "element_saliency",
        "group_saliency",
        "iter_ranked",
        "rank_groups",
        "unit_score_stats",
    ),
    "efficientllm.obs": ("compensate", "layer_hessian", "obs_remove_columns_"),
    "efficientllm.schedule": ("PruneConfig", "PruneEvent", "Pruner", "select_groups"),
    "efficientllm.compaction": ("compact",),
    "efficientllm.modeling": ("EfficientLlamaConfig", "EfficientLlamaForCausalLM"),
    "efficientllm.export": ("ExportError", "ExportReport", "export_model", "load_exported"),
    "efficientllm.evaluation": ("MCItem", "MCResult", "lm_eval_tasks", "multiple_choice", "perplexity"),
    "efficientllm.training": ("PruneTrainConfig", "TrainResult", "prune_train"),
    "efficientllm.baselines": (
        "build_from_shape",
        "from_scratch_like",
        "one_shot_prune",
        "shape_of",
        "uniform_shape",
    ),
    "efficientllm.world": ("TinyWorld", "TinyWorldConfig", "make_tiny_world"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from efficientllm.baselines import (
        build_from_shape,
        from_scratch_like,
        one_shot_prune,
        shape_of,
        uniform_shape,
    )
    from efficientllm.compaction import compact
    from efficientllm.evaluation import MCItem, MCResult, lm_eval_tasks, multiple_choice, perplexity
    from efficientllm.export import ExportError, ExportReport, export_model, load_exported
    from efficientllm.groups import KINDS, Group, PruningSpace, find_groups
    from efficientllm.masks import MaskPlan, apply_masks, mask_plan
    from efficientllm.modeling import EfficientLlamaConfig, EfficientLlamaForCausalLM
    from efficientllm.obs import compensate, layer_hessian, obs_remove_columns_
    from efficientllm.saliency import (
        Candidate,
        GroupScores,
        SaliencyAccumulator,
        element_saliency,
        group_saliency,
        iter_ranked,
        rank_groups,
        unit_score_stats,
    )
    from efficientllm.schedule import PruneConfig, PruneEvent, Pruner, select_groups
    from efficientllm.state import PruningState, Units
    from efficientllm.training import PruneTrainConfig, TrainResult, prune_train
    from efficientllm.world import TinyWorld, TinyWorldConfig, make_tiny_world
