"""The KV caches of both drivers: growable layers, and the plan of what a cache must recompute.

transformers' `DynamicLayer` concatenates the whole cache with every new token, which is quadratic in
the answer length and dominated the batched decoding profile; `GrowableLayer` writes new columns into a
buffer with spare capacity and exposes views of the filled part. Other layer kinds (sliding windows)
are left as transformers builds them. `plan_sync` and `answer_from` are the one sync rule of the
single-stream cache (`nudging.fast.CachedLM`) and the batched one (`nudging.lockstep.BatchedCachedLM`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import PreTrainedModel
from transformers.cache_utils import DynamicCache, DynamicLayer


class GrowableLayer(DynamicLayer):
    """`DynamicLayer` with a preallocated buffer: `keys`/`values` are views of its first `length` columns."""

    def __init__(self) -> None:
        super().__init__()
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self._length = 0

    def _reserve(self, key_states: torch.Tensor, value_states: torch.Tensor, length: int) -> None:
        if self._k is not None and length <= self._k.shape[2]:
            return
        capacity = max(64, 2 * length)
        k = key_states.new_zeros((*key_states.shape[:2], capacity, key_states.shape[3]))
        v = value_states.new_zeros((*value_states.shape[:2], capacity, value_states.shape[3]))
        if self._k is not None and self._length:
            k[:, :, : self._length] = self._k[:, :, : self._length]
            v[:, :, : self._length] = self._v[:, :, : self._length]
        self._k, self._v = k, v

    def _expose(self) -> None:
        self.keys = self._k[:, :, : self._length]
        self.values = self._v[:, :, : self._length]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        self._reserve(key_states, value_states, self._length + new)
        self._k[:, :, self._length : self._length + new] = key_states
        self._v[:, :, self._length : self._length + new] = value_states
        self._length += new
        self._expose()
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("GrowableLayer.crop takes a negative count of tokens to remove")
        if tokens_to_remove == 0 or not self.is_initialized:
            return
        self._length = max(0, self._length + tokens_to_remove)
        self._expose()

    def replace(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Set the cached states outright (e.g. after compacting columns); the buffer is kept if it fits."""
        fits = (
            self._k is not None
            and self._v is not None
            and self._k.shape[:2] == keys.shape[:2]
            and self._v.shape[:2] == values.shape[:2]
            and keys.shape[2] <= self._k.shape[2]
        )
        if not fits:
            self._k, self._v, self._length = None, None, 0
            self._reserve(keys, values, keys.shape[2])
        self._k[:, :, : keys.shape[2]] = keys
        self._v[:, :, : values.shape[2]] = values
        self._length = keys.shape[2]
        self._expose()


def growable_cache(model: PreTrainedModel) -> DynamicCache:
    """The cache transformers would build for `model`, with every plain `DynamicLayer` made growable."""
    config = getattr(model, "config", None)
    if config is None:  # a wrapper without a config: layers are created as they are first used
        cache = DynamicCache()
        if getattr(cache, "layer_class_to_replicate", None) is DynamicLayer:
            cache.layer_class_to_replicate = GrowableLayer
        return cache
    cache = DynamicCache(config=config)
    cache.layers = [GrowableLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def is_full_attention(model: PreTrainedModel) -> bool:
    """Whether every layer of the model's cache is plain full attention (no sliding window, no state)."""
    try:
        layers = DynamicCache(config=model.config).layers  # AttributeError: a wrapper without a config
    except Exception:  # an architecture DynamicCache cannot describe
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


# ------------------------------------------------------------------------------------------- sync plan
Logits = dict[int, torch.Tensor]  # position p -> next-token logits after ids[: p + 1]


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_sync(
    ids: list[int], memo: Logits, target: list[int], need: Iterable[int]
) -> tuple[set[int], int | None]:
    """(positions whose logits are wanted, first position to recompute or None if all are at hand).

    Shared by `CachedLM` and the batched cache: the cache holds `ids` and the logits in `memo`; what it
    must recompute starts where `target` leaves the cached ids or at the first wanted position missing.
    """
    if not target:
        raise ValueError("cannot sync a model to an empty token sequence")
    wanted = {*need, len(target) - 1}
    n = _lcp(ids, target)
    missing = [p for p in wanted if p >= n or p not in memo]
    return wanted, (min(n, *missing) if missing else None)


def answer_from(memo: Logits, wanted: set[int]) -> tuple[Logits, Logits]:
    """(the logits at `wanted`, the memo without logits no later call can ask for once it is large)."""
    if len(memo) > 4 * len(wanted) + 32:
        low = min(wanted)
        memo = {p: v for p, v in memo.items() if p >= low}
    return {p: memo[p] for p in wanted}, memo
