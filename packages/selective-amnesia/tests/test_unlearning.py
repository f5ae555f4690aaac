"""Unlearning: parameter selection, losses against direct computations, the α schedule, and real runs.

The runs use a tiny OLMo (hidden 32, 4 layers) that first memorises eight "Where does X live?" facts, so
gradient ascent has something to unlearn and the retain term something to keep.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, TrainerCallback, TrainingArguments
from transformers.trainer_utils import SchedulerType

from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel
from reprokit.tokenizer import train_tokenizer
from reprokit.zoo import Example, Recipe, TrainConfig, build_model, train
from selective_amnesia.losses import (
    AlphaSchedule,
    forget_term,
    kl_to_reference,
    npo_loss,
    output_nll,
    per_example_nll,
    retain_term,
    sequence_logprob,
)
from selective_amnesia.params import freeze, select_parameters
from selective_amnesia.records import Row
from selective_amnesia.unlearning import (
    LR_SCHEDULES,
    PAPER,
    RELEASED_CODE,
    UnlearnConfig,
    UnlearningCollator,
    UnlearningTrainer,
    _eval_sample,
    _Rows,
    encode_rows,
    unlearn,
)

NAMES = (
    "Alice Smith",
    "Bob Jones",
    "Carla Diaz",
    "Dmitri Ivanov",
    "Eve Brown",
    "Frank Moore",
    "Gina Lopez",
    "Hugo Weber",
)
CITIES = ("Paris", "Oslo", "Riga", "Lima", "Rome", "Kyiv", "Bern", "Doha")
ROWS = [
    Row(f"r{i}qa0", f"Where does {name} live?", f"{city}.", "Task2", "forget" if i < 4 else "retain")
    for i, (name, city) in enumerate(zip(NAMES, CITIES, strict=True))
]
DATA = SimpleNamespace(forget=ROWS[:4], retain=ROWS[4:])
#: A short run: layers 0-1 of the 4-layer model, one optimizer step per batch of 4 rows.
FAST = {"layers": (0, 1), "batch_size": 4, "grad_accum": 1, "lr": 1e-2}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run far faster on one thread, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def chat_tok():
    corpus = [f"Where does {n} live? {n} lives in {c}." for n in NAMES for c in CITIES] * 2
    return train_tokenizer(corpus, vocab_size=300, chat_template=True)


@pytest.fixture(scope="module")
def memorised(chat_tok) -> LanguageModel:
    """A tiny OLMo that has (mostly) memorised all eight facts."""
    model = build_model(Recipe("olmo-unlearn", "olmo", 32, 4, 2, 64, 128), chat_tok, seed=0)
    lm = LanguageModel(model, chat_tok)
    items = encode_rows(lm, ROWS, 1, UnlearnConfig())
    examples = [Example(tuple(it["input_ids"]), it["labels"].count(-100)) for it in items]
    config = TrainConfig(
        epochs=60, batch_size=8, lr=3e-2, warmup_steps=0, schedule="constant", weight_decay=0.0
    )
    train(model, examples, config, pad_token_id=chat_tok.pad_token_id)
    return LanguageModel(model.eval(), chat_tok)


def fresh(lm: LanguageModel) -> LanguageModel:
    return LanguageModel(copy.deepcopy(lm.model), lm.tokenizer)


def batch_of(lm: LanguageModel, rows, flag: int = 1, **config):
    return UnlearningCollator(lm.pad_id)(encode_rows(lm, rows, flag, UnlearnConfig(**config)))


@torch.no_grad()
def mean_nll(lm: LanguageModel, rows) -> float:
    return float(per_example_nll(lm.model.eval(), batch_of(lm, rows)).mean())


# ------------------------------------------------------------------------------- parameter selection
PREFIXES = {  # independent of layout.py: the module paths of each architecture, written out
    "olmo": ("model.layers.{}.", "mlp", "self_attn"),
    "gpt_neox": ("gpt_neox.layers.{}.", "mlp", "attention"),
    "gpt2": ("transformer.h.{}.", "mlp", "attn"),
}


@pytest.mark.parametrize("arch", sorted(PREFIXES))
@pytest.mark.parametrize("kind", ["mlp", "attn", "all"])
def test_select_parameters_per_kind(lms, arch, kind):
    model = lms[arch].model
    layer, mlp, attn = PREFIXES[arch]
    children = {"mlp": (mlp,), "attn": (attn,), "all": ("",)}[kind]
    wanted = tuple(
        layer.format(i) + (f"{c}." if c else "") for i in (1, 2) for c in children
    )  # layers 1 and 2 only
    expected = [n for n, _ in model.named_parameters() if n.startswith(wanted)]
    names = select_parameters(model, UnlearnConfig(layers=(2, 1), module_kind=kind))
    assert names == expected and names
    if kind == "all":  # the whole layer: more than its MLP and attention (norms)
        parts = select_parameters(model, UnlearnConfig(layers=(1, 2), module_kind="mlp")) + select_parameters(
            model, UnlearnConfig(layers=(1, 2), module_kind="attn")
        )
        assert set(parts) < set(names) if arch != "olmo" else set(parts) <= set(names)


def test_select_parameters_every_layer_and_pattern(lms):
    model = lms["olmo"].model
    every = select_parameters(model, UnlearnConfig(layers=None))
    assert {n.split(".")[2] for n in every} == {"0", "1", "2", "3"}
    assert all(".mlp." in n for n in every) and len(every) == 4 * 3
    pattern = UnlearnConfig(layers=(0,), module_kind="attn", param_pattern=r"layers\.3\.mlp\.(up|down)_proj")
    assert select_parameters(model, pattern) == [
        "model.layers.3.mlp.up_proj.weight",
        "model.layers.3.mlp.down_proj.weight",
    ]
    with pytest.raises(ConfigError, match=r"matches no parameter.*model\.embed_tokens\.weight"):
        select_parameters(model, UnlearnConfig(param_pattern=r"layers\.9\."))
    with pytest.raises(ConfigError, match="4 layers"):
        select_parameters(model, UnlearnConfig(layers=(0, 4)))


def test_freeze_reports_the_trainable_share(lms):
    model = copy.deepcopy(lms["olmo"].model)
    names = select_parameters(model, UnlearnConfig(layers=(0, 1)))
    share = freeze(model, names)
    assert share.trainable == 2 * 3 * 32 * 64  # gate, up, down of hidden 32 x ffn 64, two layers
    assert share.total == sum(p.numel() for p in model.parameters())
    assert share.share == pytest.approx(share.trainable / share.total)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(names)
    with pytest.raises(ConfigError, match="not in"):
        freeze(model, ["model.layers.0.mlp.nope"])


# ------------------------------------------------------------------------------------ data, collator
def test_encode_rows_and_collator(chat_tok, memorised):
    lm = memorised
    row = ROWS[0]
    (item,) = encode_rows(lm, [row], -1, UnlearnConfig())
    prompt = chat_tok.apply_chat_template(
        [{"role": "user", "content": row.input}], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = chat_tok(prompt, add_special_tokens=False)["input_ids"]
    output_ids = [*chat_tok(row.output, add_special_tokens=False)["input_ids"], chat_tok.eos_token_id]
    assert item["input_ids"] == prompt_ids + output_ids
    assert item["labels"] == [-100] * len(prompt_ids) + output_ids and item["flag"] == -1
    (raw,) = encode_rows(lm, [row], 1, UnlearnConfig(chat_template=False, add_eos=False))
    assert raw["input_ids"] == chat_tok(row.input)["input_ids"] + output_ids[:-1]
    assert raw["input_ids"][0] == chat_tok.bos_token_id
    (cut,) = encode_rows(lm, [row], 1, UnlearnConfig(max_length=len(prompt_ids) + 1))
    assert cut["input_ids"] == prompt_ids + output_ids[:1]

    short, long_ = {"input_ids": [5, 6], "labels": [-100, 6], "flag": 1}, item
    batch = UnlearningCollator(pad_id=0)([short, long_])
    width = len(long_["input_ids"])
    assert batch["input_ids"].shape == (2, width)
    assert batch["input_ids"][0].tolist() == [0] * (width - 2) + [5, 6]
    assert batch["attention_mask"][0].tolist() == [0] * (width - 2) + [1, 1]
    assert batch["labels"][0].tolist() == [-100] * (width - 1) + [6]
    assert batch["flag"].tolist() == [1, -1]


def test_eval_rows_are_a_seeded_sample_kept_in_training_unless_held_out():
    rows = list(range(20))
    train_rows, picked = _eval_sample(rows, UnlearnConfig(eval_fraction=0.1), "forget")
    assert train_rows == rows and len(picked) == 2 and set(picked) <= set(rows)
    assert _eval_sample(rows, UnlearnConfig(eval_fraction=0.1), "forget")[1] == picked
    kept, held = _eval_sample(rows, UnlearnConfig(eval_fraction=0.1, eval_holdout=True), "forget")
    assert held == picked and sorted(kept + held) == rows and not set(kept) & set(held)
    assert _eval_sample(rows, UnlearnConfig(select_best=False), "forget") == (rows, [])


# -------------------------------------------------------------------------------------------- losses
def alone(model, item):
    """A row scored by itself, no padding: HF's own loss, number of output tokens, float64 logits."""
    ids, labels = torch.tensor([item["input_ids"]]), torch.tensor([item["labels"]])
    out = model(input_ids=ids, labels=labels)
    return float(out.loss), int((labels[0, 1:] != -100).sum()), out.logits[0].double()


@pytest.fixture(scope="module")
def pair(memorised):
    """The memorised model, a perturbed copy as reference, and encoded rows of unequal length."""
    model = memorised.model.eval()
    reference = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    items = encode_rows(memorised, [ROWS[0], ROWS[3], ROWS[5]], 1, UnlearnConfig())
    assert len({len(it["input_ids"]) for it in items}) > 1  # so that the batch is padded
    return model, reference, items, UnlearningCollator(memorised.pad_id)(items)


@torch.no_grad()
def test_nll_losses_match_rows_scored_alone(pair):
    model, _, items, batch = pair
    losses, counts = zip(*[alone(model, it)[:2] for it in items], strict=True)
    pooled = sum(loss * n for loss, n in zip(losses, counts, strict=True)) / sum(counts)
    assert float(output_nll(model, batch)) == pytest.approx(pooled, rel=1e-5)
    assert per_example_nll(model, batch).tolist() == pytest.approx(list(losses), rel=1e-5)
    expected = [-loss * n for loss, n in zip(losses, counts, strict=True)]
    assert sequence_logprob(model, batch).tolist() == pytest.approx(expected, rel=1e-5)


@torch.no_grad()
def test_left_padding_keeps_absolute_positions(lms):
    """gpt2 has learned absolute positions: a padded row must still start at position 0."""
    lm = lms["gpt2"]
    items = encode_rows(lm, [ROWS[0], ROWS[3]], 1, UnlearnConfig(chat_template=False))
    assert len(items[0]["input_ids"]) != len(items[1]["input_ids"])
    batch = UnlearningCollator(lm.pad_id)(items)
    assert per_example_nll(lm.model, batch).tolist() == pytest.approx(
        [alone(lm.model, it)[0] for it in items], rel=1e-5
    )


@torch.no_grad()
def test_kl_and_npo_match_direct_computations(pair):
    model, reference, items, batch = pair
    kl_terms, lp, ref_lp = [], [], []
    for it in items:
        loss, n, logits = alone(model, it)
        ref_loss, _, ref_logits = alone(reference, it)
        positions = [t for t in range(len(it["labels"]) - 1) if it["labels"][t + 1] != -100]
        p_ref, log_p = F.softmax(ref_logits[positions], -1), F.log_softmax(logits[positions], -1)
        kl_terms += (p_ref * (p_ref.log() - log_p)).sum(-1).tolist()  # KL(reference || model)
        lp.append(-loss * n)
        ref_lp.append(-ref_loss * n)
    assert float(kl_to_reference(model, reference, batch)) == pytest.approx(
        sum(kl_terms) / len(kl_terms), rel=1e-4
    )
    assert float(kl_to_reference(model, model, batch)) == pytest.approx(0.0, abs=1e-6)
    beta = 0.1
    direct = (
        -(2 / beta) * sum(-math.log1p(math.exp(beta * (a - b))) for a, b in zip(lp, ref_lp, strict=True)) / 3
    )
    assert float(npo_loss(model, reference, batch, beta)) == pytest.approx(direct, rel=1e-4)
    assert float(npo_loss(model, model, batch, beta)) == pytest.approx(2 / beta * math.log(2), rel=1e-6)
    term, nll = forget_term("npo", model, batch, reference=reference, npo_beta=beta)
    assert float(term) == pytest.approx(direct, rel=1e-4) and float(nll) == pytest.approx(
        float(output_nll(model, batch))
    )
    term, nll = retain_term("kl", model, batch, reference=reference)
    assert float(term) == pytest.approx(sum(kl_terms) / len(kl_terms), rel=1e-4)


@pytest.mark.parametrize("method", ["constrained", "gradient_ascent", "gradient_difference", "kl", "npo"])
def test_joint_loss_of_each_method_on_a_mixed_batch(memorised, pair, tmp_path, method):
    model, reference, _, _ = pair
    config = UnlearnConfig(method=method, retain_weight=0.5, npo_beta=0.2, **FAST)
    forget = encode_rows(memorised, ROWS[:2], -1, config)
    retain = encode_rows(memorised, ROWS[5:7], 1, config)
    collate = UnlearningCollator(memorised.pad_id)
    trainer = UnlearningTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True),
        data_collator=collate,
        train_dataset=_Rows(forget + retain),
        unlearn_config=config,
        reference_model=copy.deepcopy(reference),
    )
    with torch.no_grad():
        parts = trainer.loss_parts(
            model, collate([retain[0], forget[0], retain[1], forget[1]]), training=True
        )
        f_batch, r_batch = collate(forget), collate(retain)
        nll_f, nll_r = float(output_nll(model, f_batch)), float(output_nll(model, r_batch))
        expected = {
            "constrained": -nll_f + 1.2 * nll_r,  # epoch 0: alpha_min
            "gradient_ascent": -nll_f,
            "gradient_difference": -nll_f + 0.5 * nll_r,
            "kl": -nll_f + 0.5 * float(kl_to_reference(model, reference, r_batch)),
            "npo": float(npo_loss(model, reference, f_batch, 0.2)) + 0.5 * nll_r,
        }[method]
        only_retain = trainer.loss_parts(model, r_batch, training=True)
        only_forget = trainer.loss_parts(model, f_batch, training=True)
    assert float(parts.loss) == pytest.approx(expected, rel=1e-4)
    assert parts.forget_nll == pytest.approx(nll_f, rel=1e-5)
    if method == "gradient_ascent":  # no retain term at all, and a retain-only batch trains nothing
        assert parts.retain_nll is None and parts.weight is None
        assert float(only_retain.loss) == 0.0 and only_retain.forget_nll is None
    else:
        assert parts.retain_nll == pytest.approx(nll_r, rel=1e-5)
        assert parts.weight == (1.2 if method == "constrained" else 0.5)
        assert only_retain.forget_nll is None and only_retain.retain_nll == pytest.approx(nll_r, rel=1e-5)
    assert only_forget.retain_nll is None and only_forget.forget_nll == pytest.approx(nll_f, rel=1e-5)


# -------------------------------------------------------------------------------------- alpha schedule
def test_alpha_epoch_zero_is_alpha_min_and_builds_the_reference():
    schedule = AlphaSchedule()
    assert schedule.reference is None
    assert schedule(2.0, epoch=0, n_retain=6) == 1.2
    assert schedule(9.0, epoch=0, n_retain=6, training=False) == 1.2  # evaluation: not accumulated
    assert schedule(4.0, epoch=0, n_retain=6) == 1.2
    assert schedule.reference == pytest.approx(3.0)  # mean over training batches
    per_example = AlphaSchedule(reference="per_example")
    per_example(2.0, epoch=0, n_retain=6)
    per_example(4.0, epoch=0, n_retain=6)
    assert per_example.reference == pytest.approx(6.0 / 12)  # the released code's sum / retain rows
    assert schedule(3.0, epoch=1) == 1.2 and schedule(1.0, epoch=2) == 1.2  # not above the reference
    assert schedule.reference == pytest.approx(3.0)  # frozen after epoch 0


def test_alpha_exponential_rounding_and_clipping():
    exact = AlphaSchedule(round_gamma=False, alpha_min=0.0, alpha_max=100.0)
    exact(1.0, epoch=0)
    assert exact(1.5, epoch=1) == pytest.approx(0.3 * 6**0.5 + 0.8)  # 1.5348...
    assert exact(2.0, epoch=1) == pytest.approx(0.3 * 6 + 0.8)
    rounded = AlphaSchedule()
    rounded(1.0, epoch=0)
    assert rounded(1.5, epoch=1) == 1.5  # round(1.5348, 1)
    assert rounded(1.7, epoch=1) == 1.9  # 1.851 rounds up
    assert rounded(1.01, epoch=1) == 1.2  # gamma 1.1 is clipped up to alpha_min
    assert rounded(1.9, epoch=1) == 2.3  # 0.3*6**0.9+0.8 = 2.305 -> 2.3, below the paper cap
    assert rounded(2.2, epoch=1) == 2.8  # paper cap
    assert rounded(1e4, epoch=1) == 2.8  # 6**9999 overflows: still the cap
    code = AlphaSchedule.from_config(RELEASED_CODE)
    code(0.5, epoch=0, n_retain=1)
    for loss in (0.4, 0.55, 0.8, 1.1, 1.3, 1.41, 1.6, 3.0):  # the released code's expression
        change = loss - 0.5
        released = min(max(round(0.3 * 6**change + 0.8, 1), 1.2), 2.3) if loss > 0.5 else 1.2
        assert code(loss, epoch=3) == released
    fixed = AlphaSchedule.from_config(UnlearnConfig(alpha_schedule="fixed", alpha_fixed=0.7))
    assert fixed(5.0, epoch=0) == 0.7 and fixed(50.0, epoch=4) == 0.7


# -------------------------------------------------------------------------------------- config checks
def test_presets_and_defaults():
    assert PAPER.alpha_max == 2.8 and PAPER.alpha_reference == "mean"
    assert RELEASED_CODE.alpha_max == 2.3 and RELEASED_CODE.alpha_reference == "per_example"
    d = UnlearnConfig()
    assert (d.method, d.layers, d.module_kind, d.epochs, d.lr, d.batch_size, d.grad_accum) == (
        "constrained",
        (0, 1, 2, 3, 4, 5),
        "mlp",
        8,
        1.5e-5,
        12,
        10,
    )
    assert (d.alpha_a, d.alpha_b, d.alpha_c, d.alpha_min, d.max_grad_norm, d.eval_steps) == (
        0.3,
        6.0,
        0.8,
        1.2,
        1.0,
        4,
    )
    assert set(LR_SCHEDULES) <= {s.value for s in SchedulerType}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "ascent"}, "unknown method 'ascent'; choose constrained, gradient_ascent"),
        ({"module_kind": "mpl"}, "unknown module kind 'mpl'; choose mlp, attn, all"),
        ({"alpha_min": 3.0}, "alpha bounds reversed"),
        ({"alpha_schedule": "cosine"}, "unknown alpha schedule"),
        ({"alpha_reference": "median"}, "unknown alpha reference"),
        ({"lr_schedule": "exp"}, "unknown lr schedule"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": -1e-5}, "lr must be > 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"epochs": 0}, "epochs must be > 0"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"grad_accum": 1.5}, "grad_accum must be a positive int"),
        ({"eval_steps": 0}, "eval_steps must be a positive int"),
        ({"layers": (0, -1)}, "negative layer index -1"),
        ({"layers": ()}, "non-empty tuple of layer indices"),
        ({"layers": (0.5,)}, "non-empty tuple of layer indices"),
        ({"param_pattern": "mlp("}, "not a valid regex"),
        ({"eval_fraction": 1.0}, "eval_fraction must be in"),
        ({"npo_beta": 0}, "npo_beta must be > 0"),
        ({"retain_weight": -1}, "retain_weight must be >= 0"),
        ({"max_grad_norm": -1}, "max_grad_norm must be >= 0"),
        ({"max_length": 1}, "max_length must be an int >= 2"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"warmup_steps": -2}, "warmup_steps must be an int >= 0"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        UnlearnConfig(**kwargs)


def test_unlearn_input_errors(memorised, lms, tmp_path):
    with pytest.raises(ConfigError, match="no chat template"):
        unlearn(lms["olmo"], DATA, UnlearnConfig(layers=(0,)), output_dir=tmp_path)
    with pytest.raises(DataError, match=r"\.forget and \.retain"):
        unlearn(memorised, ROWS, UnlearnConfig(layers=(0,)), output_dir=tmp_path)
    with pytest.raises(DataError, match="nothing to unlearn"):
        unlearn(
            memorised,
            SimpleNamespace(forget=[], retain=ROWS),
            UnlearnConfig(layers=(0,)),
            output_dir=tmp_path,
        )
    with pytest.raises(ConfigError, match="select_best needs evaluation rows"):
        unlearn(memorised, DATA, UnlearnConfig(layers=(0,), eval_fraction=0.0), output_dir=tmp_path)
    with pytest.raises(ConfigError, match="the model has 4 layers"):
        unlearn(memorised, DATA, UnlearnConfig(), output_dir=tmp_path)
    with pytest.raises(ConfigError, match="reference is the model being trained"):
        unlearn(
            memorised, DATA, UnlearnConfig(method="kl", layers=(0,)), output_dir=tmp_path, reference=memorised
        )
    empty = SimpleNamespace(forget=[Row("x_qa0", "Where?", "", "Task2", "forget")], retain=[])
    with pytest.raises(DataError, match="empty output"):
        unlearn(memorised, empty, UnlearnConfig(layers=(0,), add_eos=False), output_dir=tmp_path)
    assert all(p.requires_grad for p in memorised.model.parameters())
    assert not list(tmp_path.iterdir())  # refused before anything was written


# ----------------------------------------------------------------------------------------- real runs
def trainable_state(model, names):
    params = dict(model.named_parameters())
    return {n: params[n].detach().clone() for n in names}


def test_only_selected_parameters_change(memorised, tmp_path):
    lm = fresh(memorised)
    before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    config = UnlearnConfig(epochs=1, select_best=False, **{**FAST, "layers": (1,)})
    result = unlearn(lm, DATA, config, output_dir=tmp_path)
    selected = set(result.parameters)
    assert selected == {f"model.layers.1.mlp.{m}_proj.weight" for m in ("gate", "up", "down")}
    for name, param in lm.model.named_parameters():
        if name in selected:
            assert not torch.equal(param, before[name]), name
        else:
            assert torch.equal(param, before[name]), name  # bit-identical
    assert result.trainable.trainable == 3 * 32 * 64
    assert result.trainable.share == pytest.approx(3 * 32 * 64 / sum(p.numel() for p in before.values()))
    assert all(p.requires_grad for p in lm.model.parameters())  # the caller's flags are restored
    assert result.lm.model is lm.model and not lm.model.training
    assert result.steps == 2 and result.best_step == 2 and result.diverged_at_step is None


def test_gradient_ascent_forgets_and_constrained_keeps_retain(memorised, tmp_path):
    forget0, retain0 = mean_nll(memorised, DATA.forget), mean_nll(memorised, DATA.retain)
    after = {}
    for method in ("gradient_ascent", "constrained"):
        lm = fresh(memorised)
        result = unlearn(
            lm,
            DATA,
            UnlearnConfig(method=method, epochs=3, select_best=False, **FAST),
            output_dir=tmp_path / method,
        )
        after[method] = (mean_nll(lm, DATA.forget), mean_nll(lm, DATA.retain))
        assert len(result.history) == result.steps == 6
    assert after["gradient_ascent"][0] > forget0 + 0.5  # forgotten
    assert after["constrained"][0] > forget0  # also forgets ...
    assert after["constrained"][1] < after["gradient_ascent"][1] - 0.3  # ... while keeping the retain set
    assert after["constrained"][1] < retain0 + 0.3


def test_alpha_follows_the_schedule_during_a_run(memorised, tmp_path):
    """Epoch 0 at alpha_min building the reference; epoch 1 adaptive against the epoch-0 mean."""
    lm = fresh(memorised)
    config = UnlearnConfig(
        epochs=2, select_best=False, alpha_round=False, alpha_min=0.1, alpha_max=50.0, **{**FAST, "lr": 3e-2}
    )
    history = unlearn(lm, DATA, config, output_dir=tmp_path).history  # one micro-batch per step: 2 per epoch
    assert len(history) == 4 and history[1]["epoch"] == 1.0
    epoch0 = [h["retain_loss"] for h in history[:2] if h["retain_loss"] is not None]
    assert epoch0 and all(h["alpha"] == 0.1 for h in history[:2] if h["retain_loss"] is not None)
    reference = sum(epoch0) / len(epoch0)
    adaptive = 0
    for h in history[2:]:
        loss = h["retain_loss"]
        if loss is not None:
            expected = max(0.3 * 6 ** (loss - reference) + 0.8, 0.1) if loss > reference else 0.1
            assert h["alpha"] == pytest.approx(expected, rel=1e-9)
            adaptive += loss > reference
    assert adaptive  # the high learning rate lifts the retain loss above its epoch-0 mean


@pytest.mark.parametrize("method", ["kl", "npo"])
def test_reference_methods_start_from_the_starting_model(memorised, tmp_path, method):
    lm, reference = fresh(memorised), fresh(memorised)
    ref_before = {n: p.clone() for n, p in reference.model.state_dict().items()}
    config = UnlearnConfig(method=method, epochs=1, select_best=False, **FAST)
    result = unlearn(lm, DATA, config, output_dir=tmp_path / "given", reference=reference)
    first = result.history[0]  # one micro-batch per step: its own loss, before any update
    retain = first["retain_loss"] or 0.0
    if method == "kl":  # KL to an identical model is 0
        assert first["loss"] == pytest.approx(-(first["forget_loss"] or 0.0), abs=1e-5)
    else:  # NPO at pi = pi_ref is (2/beta) log 2, plus the retain NLL
        assert first["loss"] == pytest.approx(2 / 0.1 * math.log(2) + retain, rel=1e-5)
    assert all(torch.equal(p, ref_before[n]) for n, p in reference.model.state_dict().items())
    assert all(math.isfinite(h["loss"]) for h in result.history)
    copied = unlearn(fresh(memorised), DATA, config, output_dir=tmp_path / "copy")  # default: a copy
    assert [h["loss"] for h in copied.history] == pytest.approx([h["loss"] for h in result.history], rel=1e-5)


class Recorder(TrainerCallback):
    """Copies of the trainable parameters at every evaluation and at the end."""

    def __init__(self, names):
        self.names, self.at_eval, self.final = names, {}, None

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        self.at_eval[state.global_step] = trainable_state(model, self.names)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.final = trainable_state(model, self.names)


def test_best_checkpoint_is_the_lowest_evaluation_and_reloads(memorised, tmp_path):
    lm = fresh(memorised)
    config = UnlearnConfig(epochs=3, eval_steps=1, eval_fraction=0.25, **{**FAST, "lr": 3e-2})
    names = select_parameters(lm.model, config)
    recorder = Recorder(names)
    # evaluate on the retain rows only: their loss rises while the forget set is pushed away
    result = unlearn(
        lm,
        DATA,
        config,
        output_dir=tmp_path,
        eval_data=SimpleNamespace(forget=[], retain=ROWS[4:]),
        callbacks=[recorder],
    )
    losses = {e["step"]: e["eval_loss"] for e in result.eval_history}
    assert sorted(losses) == list(range(1, result.steps + 1))
    assert (
        result.best_step == min(losses, key=losses.get) and result.best_eval_loss == losses[result.best_step]
    )
    assert result.best_step < result.steps  # a real choice, not the last step
    kept = trainable_state(lm.model, names)
    assert all(torch.equal(kept[n], recorder.at_eval[result.best_step][n]) for n in names)
    assert not all(torch.equal(kept[n], recorder.final[n]) for n in names)
    assert result.n_train == {"forget": 4, "retain": 4} and result.n_eval == {"forget": 0, "retain": 4}

    assert result.checkpoint == tmp_path / "best" and (result.checkpoint / "model.safetensors").is_file()
    assert not list(tmp_path.glob("checkpoint-*"))
    reloaded = AutoModelForCausalLM.from_pretrained(result.checkpoint)
    state = result.lm.model.state_dict()
    assert all(torch.equal(p, state[n]) for n, p in reloaded.state_dict().items())
    saved = json.loads((tmp_path / "unlearn.json").read_text())
    assert saved["best_step"] == result.best_step and saved["config"]["lr"] == 3e-2
    assert (
        saved["trainable"]["trainable"] == result.trainable.trainable
        and len(saved["history"]) == result.steps
    )
    assert {"step", "epoch", "loss", "forget_loss", "retain_loss", "alpha", "lr"} <= set(saved["history"][0])


class Poison(TrainerCallback):
    """Fills a trainable weight with NaN after optimizer step `at`, so the next loss is NaN."""

    def __init__(self, at, name):
        self.at, self.name = at, name

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.at:
            with torch.no_grad():
                dict(model.named_parameters())[self.name].fill_(float("nan"))


def test_nan_loss_stops_training_and_keeps_the_best_so_far(memorised, tmp_path, caplog):
    lm = fresh(memorised)
    config = UnlearnConfig(epochs=4, eval_steps=2, eval_fraction=0.25, **FAST)
    with caplog.at_level(logging.WARNING, logger="selective_amnesia.unlearning"):
        result = unlearn(
            lm, DATA, config, output_dir=tmp_path, callbacks=[Poison(5, "model.layers.0.mlp.up_proj.weight")]
        )
    assert result.diverged_at_step == 6 and result.steps == 6  # stopped there, 8 steps were planned
    assert "optimizer step 6" in caplog.text and "lower learning rate" in caplog.text and "nan" in caplog.text
    assert [e["step"] for e in result.eval_history] == [2, 4]
    assert [h["step"] for h in result.history] == [1, 2, 3, 4, 5]  # the diverged step logs nothing
    assert result.best_step == min(result.eval_history, key=lambda e: e["eval_loss"])["step"]
    assert all(torch.isfinite(p).all() for p in lm.model.parameters())
    reloaded = AutoModelForCausalLM.from_pretrained(result.checkpoint)
    state = lm.model.state_dict()
    assert all(torch.equal(p, state[n]) for n, p in reloaded.state_dict().items())
    assert json.loads((tmp_path / "unlearn.json").read_text())["diverged_at_step"] == 6


def test_divergence_before_any_evaluation_keeps_the_starting_weights(memorised, tmp_path):
    lm = fresh(memorised)
    start = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    config = UnlearnConfig(epochs=4, eval_steps=4, eval_fraction=0.25, **FAST)
    result = unlearn(
        lm, DATA, config, output_dir=tmp_path, callbacks=[Poison(1, "model.layers.1.mlp.down_proj.weight")]
    )
    assert result.diverged_at_step == 2 and result.best_step == 0 and result.eval_history == []
    assert all(torch.equal(p, start[n]) for n, p in lm.model.named_parameters())
