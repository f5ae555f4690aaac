"""Tiny model recipes and one plain training loop for pretraining and fine-tuning on a CPU.

The loop records the training order it actually used (the *transcript*), saves model + optimizer +
data position at chosen steps, resumes from such a checkpoint to identical final weights, and caches
finished models under `$REPROKIT_CACHE` keyed by a content hash of recipe, data, config and seed.
Every output folder loads with `from_pretrained`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    GPTNeoXConfig,
    LlamaConfig,
    OlmoConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
)

import reprokit
from reprokit.cli import resolve_cache_dir
from reprokit.lm import LanguageModel, load_lm
from reprokit.progress import progress
from reprokit.results import atomic_directory

logger = logging.getLogger(__name__)

Architecture = Literal["llama", "gpt_neox", "olmo", "gemma2", "qwen2"]
ARCHITECTURES: tuple[str, ...] = ("llama", "gpt_neox", "olmo", "gemma2", "qwen2")


# ----------------------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """Shape of a tiny causal LM; the vocabulary comes from the tokenizer it is built with."""

    name: str
    architecture: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512

    def config(self, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
        """The transformers config for this recipe and tokenizer."""
        common: dict[str, Any] = {
            "vocab_size": len(tokenizer),
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        head_dim = self.hidden_size // self.num_heads
        if self.architecture == "llama":
            return LlamaConfig(**common, num_key_value_heads=self.num_heads, tie_word_embeddings=False)
        if self.architecture == "gpt_neox":
            return GPTNeoXConfig(
                **common, tie_word_embeddings=False, hidden_dropout=0.0, attention_dropout=0.0
            )
        if self.architecture == "olmo":
            return OlmoConfig(**common, num_key_value_heads=self.num_heads, tie_word_embeddings=False)
        if self.architecture == "gemma2":
            return Gemma2Config(
                **common,
                num_key_value_heads=self.num_heads,
                head_dim=head_dim,
                sliding_window=self.max_position_embeddings,
                query_pre_attn_scalar=head_dim,
            )
        if self.architecture == "qwen2":
            return Qwen2Config(**common, num_key_value_heads=self.num_heads, tie_word_embeddings=False)
        raise ValueError(f"unknown architecture {self.architecture!r}; choose one of {ARCHITECTURES}")


_SIZES = {  # name suffix -> (hidden, layers, heads, ffn); parameter counts assume a ~1k vocabulary
    "0.3m": (64, 2, 4, 192),
    "1m": (128, 4, 4, 352),
    "3m": (192, 6, 6, 512),
}

RECIPES: dict[str, Recipe] = {
    f"{arch}-{size}": Recipe(f"{arch}-{size}", arch, *shape)
    for arch in ARCHITECTURES
    for size, shape in _SIZES.items()
}


def get_recipe(recipe: str | Recipe) -> Recipe:
    """Look a recipe up by name (e.g. ``"llama-3m"``); unknown names get suggestions."""
    if isinstance(recipe, Recipe):
        return recipe
    if recipe in RECIPES:
        return RECIPES[recipe]
    close = difflib.get_close_matches(recipe, RECIPES, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"unknown recipe {recipe!r}.{hint} Known recipes: {', '.join(sorted(RECIPES))}.")


def build_model(
    recipe: str | Recipe, tokenizer: PreTrainedTokenizerBase, *, seed: int = 0
) -> PreTrainedModel:
    """A freshly initialised model of `recipe` sized to `tokenizer` (deterministic in `seed`)."""
    config = get_recipe(recipe).config(tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# ---------------------------------------------------------------------------------------- examples
@dataclass(frozen=True)
class Example:
    """One training sequence; the first `prompt_length` tokens are context and carry no loss."""

    input_ids: tuple[int, ...]
    prompt_length: int = 0


def encode_texts(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], *, max_length: int = 256, add_eos: bool = True
) -> list[Example]:
    """Plain-text examples (bos + text [+ eos]), the whole sequence trained on."""
    if len(texts) == 0:
        raise ValueError("encode_texts: no texts given; pass at least one text.")
    out = []
    for text in texts:
        ids = tokenizer(text).input_ids
        if add_eos:
            ids = [*ids, tokenizer.eos_token_id]
        out.append(Example(tuple(ids[:max_length])))
    return out


def encode_stream(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    block_size: int = 256,
    separator: str = "\n\n",
) -> list[Example]:
    """Texts packed into one continuous stream, as in real pretraining, cut into `block_size` blocks.

    The texts are joined by `separator` with no end-of-sequence token between them, so a model trained on
    the stream learns that a text runs on into the next one (a base model does not stop after an answer);
    each block is bos + `block_size - 1` stream tokens, the last, shorter block included.
    """
    if len(texts) == 0:
        raise ValueError("encode_stream: no texts given; pass at least one text.")
    if block_size < 2:
        raise ValueError(f"encode_stream: block_size must be at least 2 (bos + one token), got {block_size}")
    stream: list[int] = []
    sep = tokenizer(separator, add_special_tokens=False).input_ids if separator else []
    for ids in tokenizer(list(texts), add_special_tokens=False).input_ids:
        stream += ids
        stream += sep
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    step = block_size - len(bos)
    return [Example(tuple(bos + stream[i : i + step])) for i in range(0, len(stream), step)]


def encode_prompt_completion(
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[tuple[str, str]],
    *,
    max_length: int = 256,
    add_eos: bool = True,
) -> list[Example]:
    """(prompt, completion) examples; the loss covers only the completion (and eos)."""
    if len(pairs) == 0:
        raise ValueError("encode_prompt_completion: no pairs given.")
    out = []
    for prompt, completion in pairs:
        p = tokenizer(prompt).input_ids
        c = tokenizer(completion, add_special_tokens=False).input_ids
        ids = [*p, *c, *([tokenizer.eos_token_id] if add_eos else [])]
        out.append(Example(tuple(ids[:max_length]), min(len(p), max_length)))
    return out


def encode_chats(
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[dict[str, str]]],
    *,
    max_length: int = 256,
) -> list[Example]:
    """Chat examples through the tokenizer's chat template; loss only on the final assistant turn."""
    if tokenizer.chat_template is None:
        raise ValueError(
            "encode_chats: the tokenizer has no chat template; train it with chat_template=True."
        )
    if len(conversations) == 0:
        raise ValueError("encode_chats: no conversations given.")
    out = []
    for messages in conversations:
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError("encode_chats: every conversation must end with an assistant message.")
        prompt = tokenizer.apply_chat_template(
            list(messages[:-1]), add_generation_prompt=True, tokenize=False
        )
        full = tokenizer.apply_chat_template(list(messages), tokenize=False)
        if not full.startswith(prompt):
            raise ValueError(
                "encode_chats: the chat template renders the prompt differently inside the full chat."
            )
        p = tokenizer(prompt, add_special_tokens=False).input_ids
        c = tokenizer(full[len(prompt) :], add_special_tokens=False).input_ids
        ids = [*p, *c]
        out.append(Example(tuple(ids[:max_length]), min(len(p), max_length)))
    return out


def fingerprint_examples(examples: Sequence[Example]) -> str:
    """Content hash of a list of examples (ids and prompt lengths, in order)."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(np.asarray(ex.input_ids, dtype=np.int64).tobytes())
        h.update(f"|{ex.prompt_length};".encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the plain training loop (AdamW, warmup, cosine or constant schedule)."""

    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    schedule: Literal["cosine", "constant"] = "cosine"
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float = 1.0
    seed: int = 0
    shuffle: bool = True
    lora_r: int = 0
    lora_alpha: int = 16

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"TrainConfig.epochs must be > 0, got {self.epochs}.")
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}.")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}.")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"TrainConfig.schedule must be 'cosine' or 'constant', got {self.schedule!r}.")


def make_order(n_examples: int, config: TrainConfig) -> np.ndarray:
    """The example indices in training order: one fresh permutation per epoch (seeded), truncated."""
    if n_examples < 1:
        raise ValueError("make_order: no training examples.")
    total = max(1, round(config.epochs * n_examples))
    rng = np.random.default_rng(config.seed)
    chunks = []
    for _ in range(math.ceil(total / n_examples)):
        chunks.append(rng.permutation(n_examples) if config.shuffle else np.arange(n_examples))
    return np.concatenate(chunks)[:total].astype(np.int64)


@dataclass
class TrainResult:
    """What a run returns: the model, the order it used (its transcript) and the loss curve."""

    model: PreTrainedModel
    order: np.ndarray
    batch_size: int
    losses: list[float]
    wall_time_s: float

    @property
    def steps(self) -> np.ndarray:
        """Training step at which each entry of `order` was seen."""
        return np.arange(len(self.order)) // self.batch_size


def _collate(batch: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ex.input_ids) for ex in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ex in enumerate(batch):
        n = len(ex.input_ids)
        row = torch.tensor(ex.input_ids, dtype=torch.long)
        ids[i, :n] = row
        mask[i, :n] = 1
        labels[i, ex.prompt_length : n] = row[ex.prompt_length :]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _lr_lambda(config: TrainConfig, total_steps: int):
    def f(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / max(1, config.warmup_steps)
        if config.schedule == "constant":
            return 1.0
        span = max(1, total_steps - config.warmup_steps)
        progress_ = min(1.0, (step - config.warmup_steps) / span)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress_))

    return f


def _make_optimizer(model: torch.nn.Module, config: TrainConfig, total_steps: int):
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=config.betas,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config, total_steps))
    return opt, sched


def save_checkpoint(
    path: Path,
    model: PreTrainedModel,
    optimizer,
    scheduler,
    *,
    step: int,
    order: np.ndarray,
    losses: list[float],
) -> Path:
    """Model (safetensors) + optimizer + scheduler + data position, written to a temp dir then renamed."""
    with atomic_directory(path, replace=True) as tmp:
        model.save_pretrained(tmp / "model", safe_serialization=True)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(
            json.dumps({"step": step, "scheduler": scheduler.state_dict(), "losses": losses}, default=float)
        )
        np.save(tmp / "order.npy", order, allow_pickle=False)
    return Path(path)


def train(
    model: PreTrainedModel,
    examples: Sequence[Example],
    config: TrainConfig,
    *,
    order: np.ndarray | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_steps: Sequence[int] = (),
    resume_from: str | Path | None = None,
    pad_token_id: int | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train `model` in place on `examples` with AdamW; returns the order used and the losses.

    `order` overrides the seeded shuffle (any sequence of example indices). `resume_from` is a
    checkpoint folder written by this function: model, optimizer and schedule are restored and training
    continues at the saved step of `order` (by default the checkpoint's own order), so an interrupted
    run reaches the same final weights as an uninterrupted one.
    """
    if len(examples) == 0:
        raise ValueError("train: no training examples; pass a non-empty list.")
    if order is None:
        order = np.load(Path(resume_from) / "order.npy") if resume_from else make_order(len(examples), config)
    order = np.asarray(order, dtype=np.int64)
    if order.min() < 0 or order.max() >= len(examples):
        raise ValueError(f"train: order holds indices outside [0, {len(examples)}).")
    pad = 0 if pad_token_id is None else pad_token_id  # any valid id: padded positions are masked, no loss
    bs = config.batch_size
    total_steps = math.ceil(len(order) / bs)
    model.train()
    opt, sched = _make_optimizer(model, config, total_steps)
    start, losses = 0, []
    if resume_from is not None:
        ckpt = Path(resume_from)
        if not (ckpt / "state.json").exists():
            raise FileNotFoundError(f"train: {ckpt} is not a checkpoint (no state.json).")
        # from_pretrained applies the architecture's key renames (e.g. gpt_neox's embed_out/lm_head)
        saved = AutoModelForCausalLM.from_pretrained(
            ckpt / "model", dtype=torch.float32, use_safetensors=True
        )
        target = model.get_base_model() if hasattr(model, "get_base_model") else model
        target.load_state_dict(saved.state_dict(), strict=True)
        del saved
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        state = json.loads((ckpt / "state.json").read_text())
        sched.load_state_dict(state["scheduler"])
        start, losses = int(state["step"]), list(state["losses"])
    checkpoint_steps = sorted({int(s) for s in checkpoint_steps if 0 < int(s) <= total_steps})
    if checkpoint_steps and checkpoint_dir is None:
        raise ValueError("train: checkpoint_steps given without checkpoint_dir.")
    t0 = time.perf_counter()
    steps_per_epoch, tokens = max(1, math.ceil(len(examples) / bs)), 0
    bar = progress(range(start, total_steps), total=total_steps, initial=start, desc=desc)
    for step in bar:
        batch = _collate([examples[i] for i in order[step * bs : (step + 1) * bs]], pad)
        loss = model(**batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"train: loss became {loss.item()} at step {step}; lower TrainConfig.lr "
                f"(now {config.lr}) or max_grad_norm, or check the data for empty sequences."
            )
        loss.backward()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        tokens += int(batch["attention_mask"].sum())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % steps_per_epoch == 0 or step + 1 == total_steps:
            _log_epoch(desc, step + 1, steps_per_epoch, total_steps, losses, tokens, time.perf_counter() - t0)
        if step + 1 in checkpoint_steps:
            save_checkpoint(
                Path(checkpoint_dir) / f"step-{step + 1}",
                model,
                opt,
                sched,
                step=step + 1,
                order=order,
                losses=losses,
            )
    model.eval()
    return TrainResult(model, order, bs, losses, time.perf_counter() - t0)


def _log_epoch(desc: str, step: int, per_epoch: int, total: int, losses: list[float], tokens: int, s: float):
    """One log line per epoch (and at the end): mean loss of the epoch's steps and throughput so far."""
    recent = losses[-per_epoch:]
    logger.info(
        "%s: epoch %.4g of %.4g (step %d/%d): loss %.3f, %.0f tokens/s",
        desc,
        step / per_epoch,
        total / per_epoch,
        step,
        total,
        sum(recent) / len(recent),
        tokens / max(s, 1e-9),
    )


# ------------------------------------------------------------------------------------------- cache
@contextlib.contextmanager
def _quiet_hf_bars():
    """Hide transformers' per-file save/load bars for our own tiny, fast cache reads and writes."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@dataclass(frozen=True)
class TrainedModel:
    """A finished, cached training run: a `from_pretrained` folder plus its transcript and losses."""

    path: Path
    key: str
    order: np.ndarray = field(repr=False)
    batch_size: int
    losses: tuple[float, ...] = field(repr=False)
    info: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def steps(self) -> np.ndarray:
        """Training step at which each entry of `order` was seen."""
        return np.arange(len(self.order)) // self.batch_size

    def checkpoint(self, step: int) -> Path:
        """Folder of the checkpoint saved at `step` (model, optimizer, data position)."""
        path = self.path / "checkpoints" / f"step-{step}"
        if not (path / "state.json").exists():
            saved = sorted(p.name for p in (self.path / "checkpoints").glob("step-*"))
            raise FileNotFoundError(f"no checkpoint at step {step} in {self.path}; saved: {saved or 'none'}.")
        return path

    def load(
        self, *, device: str | torch.device = "cpu", dtype: str | torch.dtype = torch.float32
    ) -> LanguageModel:
        """The model (eval mode) and its tokenizer from the cached folder (`reprokit.lm.load_lm`)."""
        with _quiet_hf_bars():
            return load_lm(self.path, device=device, dtype=dtype)

    @classmethod
    def open(cls, path: str | Path) -> TrainedModel:
        """Re-open a folder written by `train_cached`."""
        path = Path(path)
        info = json.loads((path / "training.json").read_text())
        return cls(
            path=path,
            key=info["key"],
            order=np.load(path / "order.npy"),
            batch_size=info["config"]["batch_size"],
            losses=tuple(info["losses"]),
            info=info,
        )


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


@_quiet_hf_bars()
def train_cached(
    init: str | Recipe | TrainedModel | Path,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    config: TrainConfig,
    *,
    name: str | None = None,
    order: np.ndarray | None = None,
    resume_from: str | Path | None = None,
    checkpoint_steps: Sequence[int] = (),
    init_seed: int | None = None,
    cache_dir: str | Path | None = None,
) -> TrainedModel:
    """Train (or fetch from the cache) a model and return its cached folder.

    `init` is a recipe name / `Recipe` (pretraining from scratch, initialised with `init_seed`, default
    `config.seed`) or a `TrainedModel` / model folder (fine-tuning). The cache key hashes the init, the
    tokenizer, the examples, the config, the order and resume point, and the reprokit version; the
    folder is written under a temporary name and renamed when complete, so a crash leaves no half
    model and a second call costs nothing.
    """
    from reprokit.tokenizer import tokenizer_fingerprint

    if len(examples) == 0:
        raise ValueError("train_cached: no training examples; pass a non-empty list.")
    if isinstance(init, TrainedModel):
        init_desc: Any = {"model": init.key}
    elif isinstance(init, Path) or (isinstance(init, str) and init not in RECIPES and Path(init).exists()):
        init_desc = {"folder": str(Path(init).resolve())}
        cached_info = Path(init) / "training.json"
        if cached_info.exists():
            init_desc = {"model": json.loads(cached_info.read_text())["key"]}
    else:
        init_desc = {
            "recipe": dataclasses.asdict(get_recipe(init)),
            "seed": init_seed if init_seed is not None else config.seed,
        }
    key_obj = {
        "init": init_desc,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "examples": fingerprint_examples(examples),
        "config": dataclasses.asdict(config),
        "order": None
        if order is None
        else hashlib.sha256(np.asarray(order, np.int64).tobytes()).hexdigest()[:16],
        "resume": None if resume_from is None else str(resume_from),
        "checkpoints": sorted(int(s) for s in checkpoint_steps),
        "reprokit": reprokit.__version__,
    }
    key = _digest(key_obj)
    label = name or (init_desc.get("recipe", {}).get("name") if "recipe" in init_desc else "finetune")
    root = resolve_cache_dir(cache_dir)
    final = root / "zoo" / f"{label}-{key}"
    if (final / "training.json").exists():
        logger.info("cache hit: %s", final)
        return TrainedModel.open(final)

    if "recipe" in init_desc:
        model = build_model(init, tokenizer, seed=init_desc["seed"])  # type: ignore[arg-type]
    else:
        src = init.path if isinstance(init, TrainedModel) else Path(init)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, use_safetensors=True)
    peft_model = None
    if config.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        targets = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
            - {"lm_head", "embed_out"}
        )
        peft_model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=targets
            ),
        )
    # a concurrent run that finishes first keeps its folder; ours is then dropped
    with atomic_directory(final) as tmp:
        result = train(
            peft_model or model,
            examples,
            config,
            order=order,
            resume_from=resume_from,
            checkpoint_dir=tmp / "checkpoints",
            checkpoint_steps=checkpoint_steps,
            pad_token_id=tokenizer.pad_token_id,
            desc=label,
        )
        trained = peft_model.merge_and_unload() if peft_model is not None else result.model
        trained.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        np.save(tmp / "order.npy", result.order, allow_pickle=False)
        info = {
            "key": key,
            "name": label,
            "key_inputs": key_obj,
            "config": dataclasses.asdict(config),
            "losses": result.losses,
            "wall_time_s": result.wall_time_s,
            "n_parameters": count_parameters(trained),
            "n_examples": len(examples),
        }
        (tmp / "training.json").write_text(json.dumps(info, default=str))
    logger.info("trained %s in %.1fs -> %s", label, result.wall_time_s, final)
    return TrainedModel.open(final)
