"""Layout discovery, batched causal tracing against a one-restoration-per-pass loop, skips, and roles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from reprokit.errors import ConfigError, DataError, ModelLoadError
from reprokit.lm import LanguageModel
from selective_amnesia.layout import find_layout
from selective_amnesia.roles import ROLES, propose_layers, role_effects, token_roles
from selective_amnesia.tracing import (
    Fact,
    Skipped,
    TraceResult,
    TracingConfig,
    answer_token_id,
    subject_token_range,
    trace_fact,
    trace_facts,
)
from selective_amnesia.tracing_loop import trace_fact_loop

from .conftest import ALL

FACT = Fact("The capital of Norway is", "Norway", " Oslo")
LONG = Fact("Carla Diaz was born in Riga. Carla Diaz works as a", "Carla Diaz", " pilot")
ANY = TracingConfig(samples=3, window=3, batch_size=7, require_argmax=False)

EXPECTED = {
    "llama": ("model.embed_tokens", "model.layers", "mlp", "self_attn"),
    "olmo": ("model.embed_tokens", "model.layers", "mlp", "self_attn"),
    "olmo2": ("model.embed_tokens", "model.layers", "mlp", "self_attn"),
    "qwen2": ("model.embed_tokens", "model.layers", "mlp", "self_attn"),
    "gemma2": ("model.embed_tokens", "model.layers", "mlp", "self_attn"),
    "gpt_neox": ("gpt_neox.embed_in", "gpt_neox.layers", "mlp", "attention"),
    "gpt2": ("transformer.wte", "transformer.h", "mlp", "attn"),
}


# ------------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("arch", ALL)
def test_layout_is_found_for_every_architecture(lms, arch):
    model = lms[arch].model
    layout = find_layout(model)
    assert (layout.embedding, layout.layers, layout.mlp_child, layout.attn_child) == EXPECTED[arch]
    assert layout.num_layers == 4
    names = dict(model.named_modules())
    assert names[layout.embedding] is model.get_input_embeddings()
    for kind in ("hidden", "mlp", "attn"):
        assert layout.module(kind, 3) in names
    with pytest.raises(ConfigError, match="out of range"):
        layout.module("mlp", 4)
    with pytest.raises(ConfigError, match="unknown module kind"):
        layout.module("ffn", 0)


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attn = torch.nn.Linear(4, 4)
        self.fc = torch.nn.Linear(4, 4)


class _Odd(torch.nn.Module):
    def __init__(self, blocks: bool = True) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.blocks = torch.nn.ModuleList([_Block(), _Block()] if blocks else [])

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed


def test_an_unsupported_layout_names_what_is_missing():
    with pytest.raises(
        ModelLoadError, match=r"blocks\.\* \(_Block\) have no an MLP.*children are self_attn, fc"
    ):
        find_layout(_Odd())
    with pytest.raises(ModelLoadError, match="found no decoder layers"):
        find_layout(_Odd(blocks=False))


@pytest.mark.parametrize("reuse_prefix", [True, False])
@pytest.mark.parametrize("arch", ALL)
def test_batched_tracing_equals_one_restoration_per_pass(lms, arch, reuse_prefix):
    lm = lms[arch]
    result = trace_fact(lm, FACT, replace(ANY, reuse_prefix=reuse_prefix), noise_std=0.5)
    assert set(result) == {"hidden", "mlp", "attn"}
    assert result["mlp"].subject_range[0] > 0, "a token before the subject must be compared too"
    for kind, traced in result.items():
        low, grid = trace_fact_loop(lm, FACT, kind, ANY, 0.5)
        assert traced.low_score == pytest.approx(low, abs=1e-6)
        np.testing.assert_allclose(traced.scores, grid, atol=1e-5, rtol=0)
        assert np.ptp(grid) > 1e-4, "restorations must change something, or the comparison is empty"
    assert not any(m._forward_hooks for m in lm.model.modules()), "hooks must be removed"


def test_restoring_the_last_state_or_every_layer_recovers_the_clean_score(lms):
    lm = lms["llama"]
    config = TracingConfig(samples=4, window=8, noise_scale=5.0, require_argmax=False)
    result = trace_fact(lm, LONG, config, noise_std=1.0, kinds=("hidden", "mlp"))
    hidden, mlp = result["hidden"], result["mlp"]
    assert abs(hidden.total_effect) > 1e-4
    assert hidden.scores[-1, -1] == pytest.approx(hidden.high_score, abs=1e-6)
    assert abs(hidden.scores[-1, 0] - hidden.high_score) > 1e-5  # one early layer is not enough
    # a window of 8 on 4 layers restores every layer whatever the centre: identical columns
    np.testing.assert_allclose(mlp.scores, mlp.scores[:, :1].repeat(4, axis=1), atol=1e-6)
    start, _ = mlp.subject_range
    assert np.all(mlp.scores[:start] == mlp.low_score)
    zero = trace_fact(
        lm, LONG, TracingConfig(samples=2, noise_scale=0.0, require_argmax=False), noise_std=1.0
    )
    for traced in zero.values():
        assert traced.low_score == pytest.approx(traced.high_score, abs=1e-6)
        np.testing.assert_allclose(traced.scores, traced.high_score, atol=1e-6)


def test_the_subject_range_covers_the_subject_tokens(lms):
    lm = lms["llama"]
    start, end = subject_token_range(lm, LONG.prompt, LONG.subject)
    assert lm.decode(lm.encode(LONG.prompt)[start:end]).strip() == "Carla Diaz"
    with pytest.raises(DataError, match="does not occur"):
        subject_token_range(lm, LONG.prompt, "Bob")


# ------------------------------------------------------------------------------------------- skips
def _known_fact(lms) -> tuple[LanguageModel, Fact, int]:
    """A model and fact whose answer is the model's arg-max next token (and decodes to itself)."""
    for lm in lms.values():
        for prompt in (FACT.prompt, "Bob Jones works as a", "Alice Smith was born in", LONG.prompt):
            with torch.no_grad():
                logits = lm.model(input_ids=torch.tensor([lm.encode(prompt)])).logits[0, -1]
            predicted = int(logits.argmax())
            fact = Fact(prompt, prompt.split()[0], lm.decode([predicted]))
            if fact.answer.strip() and answer_token_id(lm, prompt, fact.answer) == predicted:
                return lm, fact, predicted
    raise AssertionError("no test model predicts a whole token for any prompt")


def test_facts_the_model_does_not_know_are_skipped_with_a_reason(lms):
    lm, known, _ = _known_fact(lms)
    wrong = Fact(known.prompt, known.subject, " Oslo" if known.answer != " Oslo" else " Paris")
    run = trace_facts(lm, [known, wrong], TracingConfig(samples=2), kinds=("mlp",))
    assert [r.fact for r in run.results] == [known]
    assert len(run.skipped) == 1 and run.skipped[0].fact == wrong
    assert "next token" in run.skipped[0].reason and run.skipped[0].predicted_token == known.answer
    unsure = trace_fact(lm, known, TracingConfig(samples=2, min_clean_prob=0.99), noise_std=1.0)
    assert isinstance(unsure, Skipped) and "below min_clean_prob" in unsure.reason
    report = run.to_dict()
    assert (report["n_traced"], report["n_skipped"]) == (1, 1)
    assert report["results"][0]["total_effect"] == pytest.approx(run.results[0].total_effect)


def test_bad_configs_and_kinds_are_refused(lms):
    with pytest.raises(ConfigError, match="window"):
        TracingConfig(window=0)
    with pytest.raises(ConfigError, match="noise_scale"):
        TracingConfig(noise_scale=float("nan"))
    with pytest.raises(ConfigError, match="unknown module kinds"):
        trace_fact(lms["llama"], FACT, ANY, noise_std=1.0, kinds=("ffn",))


# ------------------------------------------------------------------------------------------- roles
def _result(n_tokens: int, subject: tuple[int, int], kind: str = "mlp", low: float = 0.1) -> TraceResult:
    scores = low + np.array([[10.0 * t + layer for layer in range(3)] for t in range(n_tokens)])
    return TraceResult(
        Fact("p", "s", "a"), kind, 10, ("x",) * n_tokens, subject, scores, low, 1.0, "a", 0, 1.0, 3
    )


def test_token_roles_take_the_last_subject_token_and_the_first_token_after_it():
    roles = token_roles(8, (2, 5))
    assert roles == {
        "before_subject": [0, 1],
        "subject_first": [2],
        "subject_middle": [3],
        "subject_last": [4],
        "after_first": [5],
        "after_middle": [6],
        "after_last": [7],
    }
    assert token_roles(3, (1, 3))["after_first"] == [] and token_roles(3, (1, 3))["after_last"] == []
    with pytest.raises(DataError):
        token_roles(3, (2, 4))


def test_role_effects_average_known_values():
    results = [_result(8, (2, 5)), _result(4, (0, 1)), _result(5, (1, 2), kind="attn")]
    table = role_effects(results, kind="mlp")
    assert list(table.index) == list(ROLES) and list(table.columns) == [0, 1, 2]
    layer = np.arange(3.0)
    np.testing.assert_allclose(table.loc["before_subject"], 5 + layer)  # only the first fact has it
    np.testing.assert_allclose(table.loc["subject_first"], (20 + 0) / 2 + layer)
    np.testing.assert_allclose(table.loc["subject_last"], (40 + 0) / 2 + layer)
    np.testing.assert_allclose(table.loc["subject_middle"], 30 + layer)
    np.testing.assert_allclose(table.loc["after_first"], (50 + 10) / 2 + layer)
    np.testing.assert_allclose(table.loc["after_middle"], (60 + 20) / 2 + layer)
    np.testing.assert_allclose(table.loc["after_last"], (70 + 30) / 2 + layer)
    assert table.attrs["n_facts"]["before_subject"] == 1 and table.attrs["n_facts"]["after_first"] == 2
    only_subject = role_effects([_result(2, (0, 2))])
    assert only_subject.loc["after_first"].isna().all()
    with pytest.raises(ConfigError, match="mix the module kinds"):
        role_effects(results)


def test_propose_layers_ranks_layers_by_mean_indirect_effect():
    results = [_result(8, (2, 5)), _result(4, (0, 1))]
    assert propose_layers(results, "mlp", 2) == (2, 1)
    flipped = [
        TraceResult(
            r.fact,
            r.kind,
            r.window,
            r.tokens,
            r.subject_range,
            r.scores[:, ::-1].copy(),
            r.low_score,
            r.high_score,
            r.answer_token,
            r.answer_token_id,
            r.noise_std,
            r.samples,
        )
        for r in results
    ]
    assert propose_layers(flipped, "mlp", 1, role="subject_last") == (0,)
    with pytest.raises(ConfigError, match="k must be"):
        propose_layers(results, "mlp", 4)
    with pytest.raises(DataError, match="no traced facts"):
        propose_layers(results, "attn", 1)


# ----------------------------------------------------------------------------------------- figures
def test_figures_render_a_fact_heatmap_and_the_aggregate_panels(tmp_path):
    from reprokit.results import save_figure
    from selective_amnesia import plot_role_effects, plot_trace

    fact = _result(6, (1, 3))
    heat = plot_trace(fact)
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()][1:4] == ["x*", "x*", "x"]
    path = save_figure(heat, tmp_path / "trace.png")
    tables = {kind: role_effects([_result(6, (1, 3), kind)]) for kind in ("mlp", "attn")}
    panels = plot_role_effects(tables)
    assert [a.get_title() for a in panels.axes if a.get_title()] == [
        "MLP: mean indirect effect",
        "attention: mean indirect effect",
    ]
    assert path.stat().st_size > 1000 and save_figure(panels, tmp_path / "roles.png").stat().st_size > 1000
    with pytest.raises(DataError, match="no role-effect tables"):
        plot_role_effects({})
