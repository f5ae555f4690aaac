"""ROME's causal tracing written plainly: one restoration per forward pass, every token and layer.

The reference that the batched tracer (`selective_amnesia.tracing`) is tested and benchmarked against:
the same noise (drawn from `TracingConfig.seed`), the same window rule, the same metric, none of the
batching. Slow by design (``tokens x layers + 1`` passes per kind); use `trace_fact` for real work.
"""

from __future__ import annotations

import numpy as np
import torch

from reprokit.lm import LanguageModel
from selective_amnesia.layout import find_layout
from selective_amnesia.tracing import Fact, TracingConfig, answer_token_id, subject_token_range

__all__ = ["trace_fact_loop"]


def _main(output):
    return output[0] if isinstance(output, tuple) else output


def trace_fact_loop(
    lm: LanguageModel, fact: Fact, kind: str, config: TracingConfig, noise_std: float
) -> tuple[float, np.ndarray]:
    """``(low_score, scores[t, l])`` of one fact and module kind, one restoration per forward pass."""
    model, layout = lm.model, find_layout(lm.model)
    modules = dict(model.named_modules())
    ids = torch.tensor([lm.encode(fact.prompt)], device=lm.device)
    start, end = subject_token_range(lm, fact.prompt, fact.subject)
    answer = answer_token_id(lm, fact.prompt, fact.answer)
    n_tokens, n_layers = ids.shape[1], layout.num_layers
    clean: dict[int, torch.Tensor] = {}
    handles = [
        modules[layout.module(kind, layer)].register_forward_hook(
            lambda m, a, o, layer=layer: clean.__setitem__(layer, _main(o).detach().clone())
        )
        for layer in range(n_layers)
    ]
    try:
        with torch.no_grad():
            model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    width = model.get_input_embeddings().weight.shape[1]
    gen = torch.Generator().manual_seed(config.seed)
    noise = torch.randn(config.samples, end - start, width, generator=gen)
    noise = (noise * config.noise_scale * noise_std).to(lm.device, lm.dtype)

    def run(restore: list[tuple[int, int]]) -> float:
        def add_noise(m, a, o):
            o = o.clone()
            o[:, start:end] += noise
            return o

        def patch(layer):
            def hook(m, a, o):
                h = _main(o).clone()
                for t, at in restore:
                    if at == layer:
                        h[:, t] = clean[layer][0, t]
                return (h, *o[1:]) if isinstance(o, tuple) else h

            return hook

        hs = [modules[layout.embedding].register_forward_hook(add_noise)]
        hs += [modules[layout.module(kind, i)].register_forward_hook(patch(i)) for i in range(n_layers)]
        try:
            with torch.no_grad():
                logits = model(input_ids=ids.expand(config.samples, -1)).logits[:, -1]
        finally:
            for h in hs:
                h.remove()
        return float(torch.softmax(logits.float(), -1)[:, answer].mean())

    grid = np.zeros((n_tokens, n_layers))
    w = 1 if kind == "hidden" else config.window
    for t in range(n_tokens):
        for layer in range(n_layers):
            window = range(max(0, layer - w // 2), min(n_layers, layer - (-w // 2)))
            grid[t, layer] = run([(t, at) for at in window])
    return run([]), grid
