"""The pruning space of a llama-family decoder: its minimal parameter groups, found from the model itself.

Three kinds of group, each the smallest set of coupled weights whose removal leaves a valid dense model:

- ``"head"``: one key/value group of one layer with its query heads (one head when there is no GQA): rows of
  q/k/v_proj (and their biases, and the entries of a full-width q_norm/k_norm as in OLMo2), columns of o_proj.
- ``"ffn"``: one intermediate channel of one layer: rows of gate_proj and up_proj, the column of down_proj.
- ``"hidden"``: one residual-stream channel, in every layer at once: rows of o_proj and down_proj (and their
  biases), columns of q/k/v/gate/up_proj, the embedding column, the entry of every RMSNorm weight and the
  LM-head column (the same tensor as the embedding when they are tied).

Every weight is described by its `Axis` objects: which dimension belongs to which kind of group and how
many consecutive entries one group owns there. Masks, saliency, parameter counts and compaction are all
computed from these axes, so nothing else needs to know the module layout. The layout is checked: every
parameter of the model must be covered, and anything else (fused qkv, LayerNorm, extra modules) is refused
with an error that names what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from torch import nn

from reprokit.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    from efficientllm.state import PruningState

__all__ = [
    "HEADS_MODES",
    "KINDS",
    "Axis",
    "Group",
    "GroupKind",
    "HeadsMode",
    "LayerModules",
    "ParamSpec",
    "PruningSpace",
    "find_groups",
]

GroupKind = Literal["head", "ffn", "hidden"]
HeadsMode = Literal["per_layer", "uniform"]
KINDS: tuple[GroupKind, ...] = ("head", "ffn", "hidden")
HEADS_MODES: tuple[HeadsMode, ...] = ("per_layer", "uniform")

_SUPPORTED = (
    "efficientllm prunes llama-family decoders (llama, qwen2, mistral, olmo2, SmolLM-shaped llama): "
    "model.embed_tokens, model.layers[i].self_attn.{q,k,v,o}_proj, model.layers[i].mlp.{gate,up,down}_proj, "
    "RMSNorm weights and lm_head"
)


@dataclass(frozen=True)
class Axis:
    """Dimension `dim` of a weight belongs to `kind` groups (of `layer`, None: hidden), `unit` entries each"""

    dim: int
    kind: GroupKind
    layer: int | None
    unit: int


@dataclass(frozen=True, eq=False)
class ParamSpec:
    """One parameter tensor and how its dimensions map onto groups.

    `norm` is set for RMSNorm weights: ``"hidden"`` for norms over the residual stream, ``"head"`` for
    OLMo2-style q_norm/k_norm over a layer's full projection width (their statistic spans the axis, which
    compaction has to correct for). `embedding` marks the embedding and an untied LM head.
    """

    name: str
    param: nn.Parameter
    module: nn.Module
    axes: tuple[Axis, ...]
    norm: GroupKind | None = None
    embedding: bool = False

    def axis(self, dim: int) -> Axis | None:
        """The axis on dimension `dim`, or None when that dimension is never pruned."""
        return next((a for a in self.axes if a.dim == dim), None)


@dataclass(frozen=True, eq=False)
class LayerModules:
    """The modules of one decoder layer that pruning touches."""

    layer: nn.Module
    attn: nn.Module
    mlp: nn.Module
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    gate: nn.Linear
    up: nn.Linear
    down: nn.Linear
    norms: tuple[nn.Module, ...]
    q_norm: nn.Module | None = None
    k_norm: nn.Module | None = None


@dataclass(frozen=True)
class Group:
    """A minimal group: `kind`, `layer` (None for hidden and for uniform head slots), `index`, `params`.

    `index` is the source-model number of the KV group, FFN channel or hidden channel (the tensor position
    when listed without a state); for uniform heads it is a slot: slot j is the j-th least salient KV
    group of every layer, resolved when pruning. `params` counts the weights the group removes from the
    model as it is now.
    """

    kind: GroupKind
    layer: int | None
    index: int
    params: int


@dataclass(eq=False)
class PruningSpace:
    """Every minimal group of one model, with handles to the modules and weights they live in.

    The widths (`hidden_size`, `kv_groups`, `ffn`) are the physical tensor widths at the time the space was
    found; a `PruningState` says which of those units are still kept.
    """

    model_type: str
    heads_mode: HeadsMode
    head_dim: int
    heads_per_group: int
    hidden_size: int
    kv_groups: tuple[int, ...]
    ffn: tuple[int, ...]
    vocab_size: int
    tied: bool
    embed: nn.Embedding
    lm_head: nn.Linear
    final_norm: nn.Module
    layers: tuple[LayerModules, ...]
    params: tuple[ParamSpec, ...]

    @property
    def num_layers(self) -> int:
        """Number of decoder layers."""
        return len(self.layers)

    def physical(self, kind: GroupKind, layer: int | None = None) -> int:
        """How many units of `kind` (in `layer`) the tensors hold."""
        if kind == "hidden":
            return self.hidden_size
        return (self.kv_groups if kind == "head" else self.ffn)[_layer(layer)]

    def _count(self, kind: GroupKind, layer: int | None, state: PruningState | None) -> int:
        return self.physical(kind, layer) if state is None else state.kept_count(kind, layer)

    def _live(self, spec: ParamSpec, dim: int, state: PruningState | None) -> int:
        axis = spec.axis(dim)
        if axis is None:
            return spec.param.shape[dim]
        return self._count(axis.kind, axis.layer, state) * axis.unit

    def live_params(self, state: PruningState | None = None, *, embeddings: bool = True) -> int:
        """Parameters of the model once the units `state` removed are gone (all of them when state is None).

        A tied embedding counts once; ``embeddings=False`` leaves out the embedding and an untied LM head.
        """
        total = 0
        for spec in self.params:
            if spec.embedding and not embeddings:
                continue
            n = 1
            for dim in range(spec.param.dim()):
                n *= self._live(spec, dim, state)
            total += n
        return total

    def unit_params(
        self,
        kind: GroupKind,
        layer: int | None = None,
        state: PruningState | None = None,
        *,
        embeddings: bool = True,
    ) -> int:
        """Parameters that removing one unit of `kind` in `layer` takes out of the model `state` leaves."""
        total = 0
        for spec in self.params:
            if spec.embedding and not embeddings:
                continue
            for axis in spec.axes:
                if axis.kind != kind or axis.layer != layer:
                    continue
                n = axis.unit
                for dim in range(spec.param.dim()):
                    if dim != axis.dim:
                        n *= self._live(spec, dim, state)
                total += n
        return total

    def groups(self, state: PruningState | None = None, *, embeddings: bool = True) -> list[Group]:
        """Every minimal group still kept in `state` (all of them when None), with its parameter count."""
        out: list[Group] = []
        for kind in KINDS:
            if kind == "head" and self.heads_mode == "uniform":
                slots = min(self._count("head", i, state) for i in range(self.num_layers))
                n = sum(
                    self.unit_params("head", i, state, embeddings=embeddings) for i in range(self.num_layers)
                )
                out.extend(Group("head", None, j, n) for j in range(slots))
                continue
            for layer in self.layer_keys(kind):
                n = self.unit_params(kind, layer, state, embeddings=embeddings)
                units = (
                    range(self._count(kind, layer, None))
                    if state is None
                    else state.kept_indices(kind, layer)
                )
                out.extend(Group(kind, layer, int(i), n) for i in units)
        return out

    def layer_keys(self, kind: GroupKind) -> Iterator[int | None]:
        """The layers a kind has units in: every layer for heads and FFN, just None for hidden."""
        if kind == "hidden":
            yield None
        else:
            yield from range(self.num_layers)


def _layer(layer: int | None) -> int:
    if layer is None:
        raise ValueError("heads and FFN channels belong to a layer: pass layer=")
    return layer


# ------------------------------------------------------------------------------------------ discovery
def _path(model: nn.Module, dotted: str) -> nn.Module | None:
    obj: object = model
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, nn.Module) else None


def _is_rmsnorm(module: nn.Module, size: int) -> bool:
    """A llama-style RMSNorm: one 1-D weight of `size`, a `variance_epsilon`, nothing else to learn."""
    names = [n for n, _ in module.named_parameters()]
    weight = getattr(module, "weight", None)
    return (
        names == ["weight"]
        and isinstance(weight, nn.Parameter)
        and tuple(weight.shape) == (size,)
        and isinstance(getattr(module, "variance_epsilon", None), float)
        and "RMSNorm" in type(module).__name__
    )


def _describe(model: nn.Module) -> str:
    return f"{type(model).__name__} (model_type {getattr(model.config, 'model_type', '?')!r})"


def _children_with_params(module: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in module.named_children() if any(True for _ in m.parameters())}


def _layer_modules(model: nn.Module, i: int, layer: nn.Module, hidden: int) -> LayerModules:
    where = f"model.layers[{i}]"
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    missing = [f"{where}.self_attn"] if attn is None else []
    missing += [f"{where}.mlp"] if mlp is None else []
    linears: dict[str, nn.Linear] = {}
    for parent, pname, names in ((attn, "self_attn", "qkvo"), (mlp, "mlp", ("gate", "up", "down"))):
        if parent is None:
            continue
        for short in names:
            module = getattr(parent, f"{short}_proj", None)
            if isinstance(module, nn.Linear):
                linears[short] = module
            else:
                found = ", ".join(_children_with_params(parent)) or "nothing"
                missing.append(f"{where}.{pname}.{short}_proj as nn.Linear (found {found})")
    if missing:
        raise ModelLoadError(f"{_describe(model)}: missing {'; '.join(missing)}. {_SUPPORTED}.")
    assert attn is not None and mlp is not None

    q, k, v, o = (linears[c] for c in "qkvo")
    head_dim = getattr(attn, "head_dim", None)
    if not isinstance(head_dim, int) or head_dim < 1:
        raise ModelLoadError(f"{_describe(model)}: {where}.self_attn has no integer head_dim attribute.")
    if q.out_features % head_dim or k.out_features % head_dim or k.out_features != v.out_features:
        raise ModelLoadError(
            f"{_describe(model)}: {where}.self_attn widths q={q.out_features}, k={k.out_features}, "
            f"v={v.out_features} are not whole heads of head_dim {head_dim}."
        )
    groups = k.out_features // head_dim
    if (q.out_features // head_dim) % groups:
        raise ModelLoadError(
            f"{_describe(model)}: {where} has {q.out_features // head_dim} query heads over {groups} "
            "key/value heads, not a whole number of query heads per KV group."
        )
    if o.in_features != q.out_features or _mlp_width_mismatch(linears):
        raise ModelLoadError(
            f"{_describe(model)}: {where} projections do not chain (o_proj/down_proj inputs)."
        )
    for name, module in (("q", q), ("k", k), ("v", v), ("gate", linears["gate"]), ("up", linears["up"])):
        if module.in_features != hidden:
            raise ModelLoadError(
                f"{_describe(model)}: {where} {name}_proj reads {module.in_features}, not {hidden}."
            )
    if o.out_features != hidden or linears["down"].out_features != hidden:
        raise ModelLoadError(
            f"{_describe(model)}: {where} o_proj/down_proj do not write the hidden size {hidden}."
        )

    extra_attn = {
        n: m
        for n, m in _children_with_params(attn).items()
        if n not in {"q_proj", "k_proj", "v_proj", "o_proj"}
    }
    qk_norms: dict[str, nn.Module] = {}
    for name, module in extra_attn.items():
        width = {"q_norm": q.out_features, "k_norm": k.out_features}.get(name)
        if width is not None and (_is_rmsnorm(module, width) or _is_rmsnorm(module, head_dim)):
            qk_norms[name] = module
        else:
            raise ModelLoadError(
                f"{_describe(model)}: {where}.self_attn.{name} ({type(module).__name__}) is not part of any "
                f"pruning group; only q/k/v/o_proj and an RMSNorm q_norm/k_norm are. {_SUPPORTED}."
            )
    extra_mlp = [n for n in _children_with_params(mlp) if n not in {"gate_proj", "up_proj", "down_proj"}]
    if extra_mlp:
        raise ModelLoadError(
            f"{_describe(model)}: {where}.mlp.{extra_mlp[0]} is not part of any pruning group."
        )

    norms = []
    for name, module in _children_with_params(layer).items():
        if name in {"self_attn", "mlp"}:
            continue
        if not _is_rmsnorm(module, hidden):
            raise ModelLoadError(
                f"{_describe(model)}: {where}.{name} ({type(module).__name__}) is not an RMSNorm over "
                f"the hidden size {hidden} with a float `variance_epsilon` (LayerNorm, (1+w) norms and "
                f"other modules cannot be pruned exactly). {_SUPPORTED}."
            )
        norms.append(module)
    return LayerModules(
        layer=layer,
        attn=attn,
        mlp=mlp,
        q=q,
        k=k,
        v=v,
        o=o,
        gate=linears["gate"],
        up=linears["up"],
        down=linears["down"],
        norms=tuple(norms),
        q_norm=qk_norms.get("q_norm"),
        k_norm=qk_norms.get("k_norm"),
    )


def _mlp_width_mismatch(linears: dict[str, nn.Linear]) -> bool:
    f = linears["gate"].out_features
    return linears["up"].out_features != f or linears["down"].in_features != f


def find_groups(model: nn.Module, *, heads: HeadsMode = "per_layer") -> PruningSpace:
    """The pruning space of `model` (llama, qwen2, mistral, olmo2, SmolLM-shaped), from modules and config.

    ``heads="per_layer"`` makes every KV group of every layer a group; ``"uniform"`` removes one KV group
    from every layer at once (the least salient one of each), so all layers keep the same head count.
    Raises `ModelLoadError` naming what is missing for any other layout.
    """
    if heads not in HEADS_MODES:
        raise ConfigError(f"heads={heads!r} is not a head mode; use one of {', '.join(HEADS_MODES)}.")
    paths = ("model.embed_tokens", "model.layers", "model.norm", "lm_head")
    found = {p: _path(model, p) for p in paths}
    missing = [p for p, m in found.items() if m is None]
    if missing or not hasattr(model, "config"):
        top = ", ".join(n for n, _ in model.named_children()) or "nothing"
        raise ModelLoadError(
            f"{_describe(model) if hasattr(model, 'config') else type(model).__name__} cannot be pruned: "
            f"missing {', '.join(missing) or 'config'} (its top-level modules: {top}). {_SUPPORTED}."
        )
    embed, layers, final_norm, lm_head = (found[p] for p in paths)
    if (
        not isinstance(embed, nn.Embedding)
        or not isinstance(lm_head, nn.Linear)
        or not isinstance(layers, nn.ModuleList)
    ):
        raise ModelLoadError(
            f"{_describe(model)}: expected nn.Embedding model.embed_tokens, nn.ModuleList model.layers and "
            f"nn.Linear lm_head, got "
            f"{type(embed).__name__}, {type(layers).__name__}, {type(lm_head).__name__}."
        )
    if len(layers) == 0:
        raise ModelLoadError(f"{_describe(model)} has no decoder layers.")
    hidden = embed.embedding_dim
    if not _is_rmsnorm(final_norm, hidden):
        raise ModelLoadError(
            f"{_describe(model)}: model.norm ({type(final_norm).__name__}) is not an RMSNorm over {hidden} "
            f"channels with a `variance_epsilon`. {_SUPPORTED}."
        )
    if lm_head.in_features != hidden or lm_head.bias is not None:
        raise ModelLoadError(
            f"{_describe(model)}: lm_head must map {hidden} channels to logits without a bias."
        )
    mods = tuple(_layer_modules(model, i, layer, hidden) for i, layer in enumerate(layers))
    head_dim = int(mods[0].attn.head_dim)
    ratios = {lm.q.out_features // lm.k.out_features for lm in mods}
    dims = {int(lm.attn.head_dim) for lm in mods}
    if len(ratios) != 1 or len(dims) != 1:
        raise ModelLoadError(
            f"{_describe(model)}: layers differ in head_dim {sorted(dims)} or query heads per KV head "
            f"{sorted(ratios)}; efficientllm needs one of each for the whole model."
        )
    r = ratios.pop()
    tied = lm_head.weight is embed.weight

    specs: list[ParamSpec] = []

    def add(
        name: str, param: nn.Parameter | None, module: nn.Module, *axes: Axis, norm=None, emb=False
    ) -> None:
        if param is not None:
            specs.append(ParamSpec(name, param, module, tuple(axes), norm, emb))

    hid = {"kind": "hidden", "layer": None, "unit": 1}
    add("model.embed_tokens.weight", embed.weight, embed, Axis(1, **hid), emb=True)
    for i, lm in enumerate(mods):
        p = f"model.layers.{i}"
        qh = Axis(0, "head", i, r * head_dim)
        kvh = Axis(0, "head", i, head_dim)
        for name, lin, head_axis in (("q", lm.q, qh), ("k", lm.k, kvh), ("v", lm.v, kvh)):
            add(f"{p}.self_attn.{name}_proj.weight", lin.weight, lin, head_axis, Axis(1, **hid))
            add(f"{p}.self_attn.{name}_proj.bias", lin.bias, lin, head_axis)
        add(
            f"{p}.self_attn.o_proj.weight",
            lm.o.weight,
            lm.o,
            Axis(0, **hid),
            Axis(1, "head", i, r * head_dim),
        )
        add(f"{p}.self_attn.o_proj.bias", lm.o.bias, lm.o, Axis(0, **hid))
        for name, norm, axis in (("q_norm", lm.q_norm, qh), ("k_norm", lm.k_norm, kvh)):
            if norm is None:
                continue
            size = norm.weight.shape[0]
            # full width (OLMo2): the statistic spans all heads; size head_dim: one weight shared by all
            full = size != head_dim and size == (lm.q if name == "q_norm" else lm.k).out_features
            if full:
                add(f"{p}.self_attn.{name}.weight", norm.weight, norm, axis, norm="head")
            else:
                add(f"{p}.self_attn.{name}.weight", norm.weight, norm)
        ffn = Axis(0, "ffn", i, 1)
        for name, lin in (("gate", lm.gate), ("up", lm.up)):
            add(f"{p}.mlp.{name}_proj.weight", lin.weight, lin, ffn, Axis(1, **hid))
            add(f"{p}.mlp.{name}_proj.bias", lin.bias, lin, ffn)
        add(f"{p}.mlp.down_proj.weight", lm.down.weight, lm.down, Axis(0, **hid), Axis(1, "ffn", i, 1))
        add(f"{p}.mlp.down_proj.bias", lm.down.bias, lm.down, Axis(0, **hid))
        for norm in lm.norms:
            name = next(n for n, m in lm.layer.named_children() if m is norm)
            add(f"{p}.{name}.weight", norm.weight, norm, Axis(0, **hid), norm="hidden")
    add("model.norm.weight", final_norm.weight, final_norm, Axis(0, **hid), norm="hidden")
    if not tied:
        add("lm_head.weight", lm_head.weight, lm_head, Axis(1, **hid), emb=True)

    covered = {id(s.param) for s in specs}
    stray = [n for n, prm in model.named_parameters() if id(prm) not in covered]
    if stray:
        raise ModelLoadError(
            f"{_describe(model)}: parameters {', '.join(stray[:5])}{' ...' if len(stray) > 5 else ''} "
            f"belong to no pruning group, so pruning would leave them inconsistent. {_SUPPORTED}."
        )
    return PruningSpace(
        model_type=str(getattr(model.config, "model_type", "")),
        heads_mode=heads,
        head_dim=head_dim,
        heads_per_group=r,
        hidden_size=hidden,
        kv_groups=tuple(lm.k.out_features // head_dim for lm in mods),
        ffn=tuple(lm.gate.out_features for lm in mods),
        vocab_size=embed.num_embeddings,
        tied=tied,
        embed=embed,
        lm_head=lm_head,
        final_norm=final_norm,
        layers=mods,
        params=tuple(specs),
    )
