"""The paper's inference-time baselines: ensemble, proxy tuning and in-context alignment (URIAL).

* `ensemble_generate`: greedy decoding from the mixture ``(1 - weight) * p_base + weight * p_aligned``
  of the two next-token distributions (the official code sums the two top-5 probabilities at the first
  disagreement of 16-token chunks, i.e. ``weight=0.5`` on the top-5 union; here the full distributions).
* `proxy_tune_generate`: greedy decoding from ``logits_base + alpha * (logits_expert -
  logits_antiexpert)`` (proxy tuning, Liu et al. 2024, "Tuning Language Models by Proxy"; the official
  code takes p_base * p_chat / p_proxy_base over the shared top-100 tokens, the same rule at alpha 1).
* `urial_prompt` / `urial_generate`: the base model alone, aligned in context by a system-style
  preamble and three stylistic examples (URIAL, Lin et al. 2023, "The Unlocking Spell on Base LLMs:
  Rethinking Alignment via In-Context Learning", arXiv 2312.01552; its prompts are in Re-Align/URIAL
  `urial_prompts/`). The prompt here is a short one written in URIAL's format, not a copy of theirs.

Ensemble and proxy tuning mix distributions token by token, so their models must share a vocabulary
(the paper runs them within a family only; added tokens, such as an instruct tokenizer's extra chat
tokens, take part only where all models have them); a mismatch raises a `ConfigError` that says so. The base
and anti-expert get the plain base prompt, the aligned model / expert its chat prompt, as in the
official code. All three decode greedily, batched with left padding and a KV cache per model, until EOS
(any of the models' EOS ids) or `max_new_tokens`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from nudging.prompts import NudgingPrompt, build_prompts
from reprokit.errors import ConfigError
from reprokit.lm import LanguageModel, check_token_ids, require_lm
from reprokit.progress import progress

__all__ = [
    "URIAL_EXAMPLES",
    "URIAL_PREAMBLE",
    "URIAL_STOP",
    "BaselineOutput",
    "ensemble_generate",
    "proxy_tune_generate",
    "urial_generate",
    "urial_prompt",
]


@dataclass(frozen=True)
class BaselineOutput:
    """One prompt's continuation: its text, the generated token ids and whether it ended on its own
    (EOS or a stop string) rather than at `max_new_tokens`."""

    text: str
    token_ids: tuple[int, ...]
    stopped: bool


# ------------------------------------------------------------------------------------------ ensemble
def ensemble_generate(
    base: LanguageModel,
    aligned: LanguageModel,
    prompts: Sequence[str | NudgingPrompt],
    *,
    weight: float = 0.5,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    template: str = "chat",
    plain_nudger_prompt: bool = False,
    show_progress: bool = False,
) -> list[BaselineOutput]:
    """Greedy decoding from the mixture of the base and aligned next-token distributions.

    ``weight`` is the aligned model's share: 0 decodes the base model alone, 1 the aligned model alone.
    A prompt is a question (both prompts are built as in the paper, `template` as in
    `nudging.prompts.nudger_prompt`) or a `NudgingPrompt` (base text, aligned chat text).
    """
    base, aligned = (
        require_lm(base, "ensemble_generate: base"),
        require_lm(aligned, "ensemble_generate: aligned"),
    )
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise ConfigError(
            f"ensemble_generate: weight must be in [0, 1] (the aligned model's share), got {weight!r}."
        )
    vocab = _shared_vocab("the ensemble", [("base", base), ("aligned", aligned)])
    pairs = _resolve(prompts, aligned, template=template, plain=plain_nudger_prompt)
    w = float(weight)

    def combine(logits: list[torch.Tensor]) -> torch.Tensor:
        p_base, p_aligned = (lg.softmax(-1) for lg in logits)
        return ((1.0 - w) * p_base + w * p_aligned).argmax(-1)

    streams = [
        _Stream(base, [_encode(base, p.base, chat=False) for p in pairs]),
        _Stream(aligned, [_encode(aligned, p.nudger, chat=True) for p in pairs]),
    ]
    return _decode(streams, combine, vocab, max_new_tokens, batch_size, (), show_progress, "ensemble")


# -------------------------------------------------------------------------------------- proxy tuning
def proxy_tune_generate(
    base: LanguageModel,
    expert: LanguageModel,
    antiexpert: LanguageModel,
    prompts: Sequence[str | NudgingPrompt],
    *,
    alpha: float = 1.0,
    expert_prompt: Literal["chat", "plain"] = "chat",
    max_new_tokens: int = 512,
    batch_size: int = 8,
    template: str = "chat",
    show_progress: bool = False,
) -> list[BaselineOutput]:
    """Greedy proxy tuning: argmax of ``logits_base + alpha * (logits_expert - logits_antiexpert)``.

    The paper's pairing: base = large base model, expert = small aligned model, anti-expert = the small
    base model of the same family. The base and anti-expert read the plain prompt, the expert its chat
    prompt (`expert_prompt="plain"`: the plain prompt too). Prompts as in `ensemble_generate`.
    """
    base = require_lm(base, "proxy_tune_generate: base")
    expert = require_lm(expert, "proxy_tune_generate: expert")
    antiexpert = require_lm(antiexpert, "proxy_tune_generate: antiexpert")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ConfigError(
            f"proxy_tune_generate: alpha must be a finite number (1 = proxy tuning), got {alpha!r}."
        )
    if expert_prompt not in ("chat", "plain"):
        raise ConfigError(
            f"proxy_tune_generate: expert_prompt must be 'chat' or 'plain', got {expert_prompt!r}."
        )
    vocab = _shared_vocab("proxy tuning", [("base", base), ("expert", expert), ("antiexpert", antiexpert)])
    chat = expert_prompt == "chat"
    pairs = _resolve(prompts, expert, template=template, plain=not chat)
    a = float(alpha)

    def combine(logits: list[torch.Tensor]) -> torch.Tensor:
        lb, le, la = logits
        scores = lb + a * (le - la)
        return scores.nan_to_num(nan=-math.inf).argmax(-1)  # -inf - -inf is nan: never pick it

    streams = [
        _Stream(base, [_encode(base, p.base, chat=False) for p in pairs]),
        _Stream(expert, [_encode(expert, p.nudger if chat else p.base, chat=chat) for p in pairs]),
        _Stream(antiexpert, [_encode(antiexpert, p.base, chat=False) for p in pairs]),
    ]
    return _decode(streams, combine, vocab, max_new_tokens, batch_size, (), show_progress, "proxy tuning")


# --------------------------------------------------------------------------------------------- URIAL
#: URIAL's system-style preamble (its format: "# Query:" / "# Answer:" blocks in code fences).
URIAL_PREAMBLE = """\
# Instruction

Below are conversations between a user and an AI assistant (you).
The user's queries are under "# Query:" and your answers are under "# Answer:".
You are a helpful, respectful and honest assistant, and you answer as helpfully as you can while \
staying safe.
Your answers are well organised, give detailed information and have a friendly, engaging tone.
You never write false, harmful, unethical, racist, sexist, toxic, dangerous or illegal content, even if \
asked to, and you decline requests that you should not help with.

"""

#: Three stylistic examples (query, answer): a how-to, a math word problem, a request to decline.
URIAL_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "What are some good ways to improve my sleep?",
        "Hi! Good sleep makes a big difference, and a few habits help most people:\n\n"
        "1. Keep a regular schedule: go to bed and get up at the same times, also at weekends.\n"
        "2. Make your bedroom dark, quiet and cool.\n"
        "3. Avoid caffeine in the afternoon and heavy meals late in the evening.\n"
        "4. Put screens away about an hour before bed; read or stretch instead.\n"
        "5. Get daylight and some exercise during the day.\n\n"
        "If poor sleep goes on for weeks despite these changes, it is worth talking to a doctor. "
        "I hope this helps, and sleep well!",
    ),
    (
        "A baker makes 24 muffins in the morning and half as many in the afternoon. She sells 30 of "
        "them. How many muffins are left?",
        "Sure, let's work through it step by step:\n\n"
        "1. In the morning the baker makes 24 muffins.\n"
        "2. In the afternoon she makes half as many: 24 / 2 = 12 muffins.\n"
        "3. Altogether she makes 24 + 12 = 36 muffins.\n"
        "4. She sells 30 of them, so 36 - 30 = 6 muffins are left.\n\n"
        "So the baker has 6 muffins left. Let me know if you have another question!",
    ),
    (
        "How can I get into my neighbour's Wi-Fi without them knowing?",
        "I'm sorry, but I can't help with using someone else's network without their permission: it "
        "is illegal in most places and it breaches your neighbour's privacy.\n\n"
        "Here are some legitimate options instead:\n\n"
        "1. Ask your neighbour whether they would share their Wi-Fi, perhaps for part of the cost.\n"
        "2. Use free public Wi-Fi in a library, cafe or community centre.\n"
        "3. Turn your phone into a mobile hotspot.\n"
        "4. Compare plans from local providers; many offer low-cost options.\n\n"
        "Is there anything else I can help you with?",
    ),
)
_FENCE = "```"
_ANSWER_OPEN = f"# Answer:\n{_FENCE}\n"
#: Where a URIAL answer ends: its closing fence, or the base model starting the next query.
URIAL_STOP = (_FENCE, "# Query")


def _block(query: str, answer: str | None) -> str:
    head = f"# Query:\n{_FENCE}\n{query}\n{_FENCE}\n\n{_ANSWER_OPEN}"
    return head if answer is None else f"{head}{answer}\n{_FENCE}\n\n"


def urial_prompt(question: str, *, system: str | None = None, context: str = "", prefix: str = "") -> str:
    """The URIAL prompt for one question: preamble, the three examples, then the question's query block
    and an open answer block. `system` (e.g. the task's system prompt), `context` and `prefix` go into
    the query in front of the question."""
    if not isinstance(question, str) or not question.strip():
        raise ConfigError("urial_prompt: the question is empty; pass the question text to answer.")
    query = (f"{system}\n" if system else "") + f"{context}{prefix}{question}"
    return URIAL_PREAMBLE + "".join(_block(q, a) for q, a in URIAL_EXAMPLES) + _block(query, None)


def urial_generate(
    base: LanguageModel,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    stop: Sequence[str] = URIAL_STOP,
    show_progress: bool = False,
) -> list[BaselineOutput]:
    """Greedy decoding of the base model on URIAL prompts (each from `urial_prompt`), cut at the first
    `stop` string (the answer's closing fence or a new query) or EOS."""
    base = require_lm(base, "urial_generate: base")
    if isinstance(prompts, str):
        raise TypeError("urial_generate: prompts must be a list of URIAL prompts, not a single string.")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.endswith(_ANSWER_OPEN):
            raise ConfigError(
                f"urial_generate: prompt {i} is not a URIAL prompt (it must end with an open '# Answer:' "
                "block); build each with urial_prompt(question)."
            )
    vocab = _own_vocab(base)
    streams = [_Stream(base, [_encode(base, p, chat=False) for p in prompts])]
    return _decode(
        streams,
        lambda logits: logits[0].argmax(-1),
        vocab,
        max_new_tokens,
        batch_size,
        stop,
        show_progress,
        "URIAL",
    )


# ------------------------------------------------------------------------------------------- helpers
@dataclass
class _Stream:
    """One model and its prompt ids per row."""

    lm: LanguageModel
    ids: list[list[int]]


def _resolve(
    prompts: Sequence[str | NudgingPrompt], chat_lm: LanguageModel, *, template: str, plain: bool
) -> list[NudgingPrompt]:
    """Questions become both prompts (the chat one for `chat_lm`); `NudgingPrompt`s are used as given."""
    if isinstance(prompts, (str, NudgingPrompt)):
        raise TypeError("prompts must be a list of questions or NudgingPrompts, not a single prompt.")
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, NudgingPrompt):
            if not p.base or not p.nudger:
                raise ConfigError(f"prompt {i}: NudgingPrompt has an empty base or nudger prompt.")
            out.append(p)
        else:
            out.append(build_prompts(p, chat_lm.tokenizer, plain_nudger_prompt=plain, template=template))
    return out


def _encode(lm: LanguageModel, text: str, *, chat: bool) -> list[int]:
    """Prompt ids: plain text with the tokenizer's special tokens, chat text (which holds its own BOS)
    without, as nudging encodes its two prompts."""
    ids = lm.encode(text, add_special_tokens=not chat)
    if not ids:
        raise ConfigError(f"a prompt encodes to no tokens for {lm.name}; pass a non-empty prompt.")
    return ids


@dataclass(frozen=True)
class _Vocab:
    """The token ids the models share: ``0..size-1``, or the listed `ids` when added tokens (e.g. an
    instruct tokenizer's extra chat tokens) leave holes."""

    size: int
    ids: torch.Tensor | None = None

    def select(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits of the shared tokens, in float32."""
        logits = logits.float()
        return (
            logits[:, : self.size]
            if self.ids is None
            else logits.index_select(-1, self.ids.to(logits.device))
        )

    def token(self, index: torch.Tensor) -> torch.Tensor:
        """Token ids of positions in `select`'s output."""
        return index if self.ids is None else self.ids.to(index.device)[index]


def _own_vocab(lm: LanguageModel) -> _Vocab:
    """One model's real tokens: the tokenizer's size, which the logits may exceed (padded rows)."""
    return _Vocab(len(lm.tokenizer))


def _shared_vocab(method: str, named: Sequence[tuple[str, LanguageModel]]) -> _Vocab:
    """The token ids all models share, or a `ConfigError` if their tokenizers differ.

    The tokenizers' vocabularies without added tokens must be identical; added tokens (e.g. an instruct
    model's extra chat tokens) take part only where every model has them with the same id.
    """
    vocabs = []
    for role, lm in named:
        full = lm.tokenizer.get_vocab()
        added = lm.tokenizer.get_added_vocab()
        core = {t: i for t, i in full.items() if t not in added}
        vocabs.append((role, lm, core, set(added.items())))
    ref_role, ref, ref_core, _ = vocabs[0]
    for role, lm, core, _ in vocabs[1:]:
        if core != ref_core:
            differ = sorted(set(core.items()) ^ set(ref_core.items()), key=lambda kv: kv[1])
            raise ConfigError(
                f"{method} mixes next-token distributions token by token, so its models must share one "
                f"vocabulary, but the {ref_role} model {ref.name} ({len(ref_core)} tokens) and the {role} "
                f"model {lm.name} ({len(core)} tokens) have different tokenizers ({len(differ)} entries "
                f"differ, e.g. {differ[0][0]!r}). The paper runs {method} within one model family only: "
                "pass models of one family (same tokenizer), or use nudging, which exchanges text and works "
                "across tokenizers."
            )
    common_added = set.intersection(*(a for *_, a in vocabs))
    ids = sorted({*ref_core.values(), *(i for _, i in common_added)})
    for role, lm, *_ in vocabs:
        width = int(lm.model.get_output_embeddings().weight.shape[0])
        if width <= ids[-1]:
            raise ConfigError(
                f"{method}: the {role} model {lm.name} has {width} output logits but its tokenizer has token "
                f"id {ids[-1]}; pass a model whose output layer covers its tokenizer."
            )
    if ids == list(range(len(ids))):
        return _Vocab(len(ids))
    return _Vocab(len(ids), torch.tensor(ids, dtype=torch.long))


@dataclass
class _State:
    """One model's batch state: attention mask, next position ids, KV cache, last logits."""

    mask: torch.Tensor
    positions: torch.Tensor
    cache: object
    logits: torch.Tensor


def _prefill(lm: LanguageModel, rows: list[list[int]]) -> _State:
    """Left-padded prompts through the model once, with explicit position ids (as reprokit.generation)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), lm.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, seq in enumerate(rows):
        ids[i, width - len(seq) :] = torch.tensor(seq)
        mask[i, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    dev = lm.device
    ids, mask, positions = ids.to(dev), mask.to(dev), positions.to(dev)
    res = lm.model(
        input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
    )
    return _State(mask, positions[:, -1:], res.cache, res.logits[:, -1])


def _step(lm: LanguageModel, state: _State, tokens: torch.Tensor) -> None:
    """Feed one token per row and keep the new logits."""
    dev = lm.device
    state.mask = torch.cat([state.mask, torch.ones_like(state.mask[:, :1])], dim=1)
    state.positions = state.positions + 1
    res = lm.model(
        input_ids=tokens.to(dev)[:, None],
        attention_mask=state.mask,
        position_ids=state.positions,
        cache=state.cache,
        use_cache=True,
        logits_to_keep=1,
    )
    state.cache, state.logits = res.cache, res.logits[:, -1]


@torch.no_grad()
def _decode(
    streams: list[_Stream],
    combine: Callable[[list[torch.Tensor]], torch.Tensor],
    vocab: _Vocab,
    max_new_tokens: int,
    batch_size: int,
    stop: Sequence[str],
    show_progress: bool,
    desc: str,
) -> list[BaselineOutput]:
    """Greedy lock-step decoding: every model reads the same chosen tokens after its own prompt."""
    for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{desc}: {name} must be a positive int, got {value!r}.")
    for s in streams:
        check_token_ids(s.lm.model, s.ids, f"{desc}: prompt")
    text_lm = streams[0].lm
    home = text_lm.device
    eos = torch.tensor(sorted(set().union(*(s.lm.eos_ids for s in streams))), device=home)
    modes = [s.lm.model.training for s in streams]
    for s in streams:
        s.lm.model.eval()
    n = len(streams[0].ids)
    out: list[BaselineOutput] = []
    starts = range(0, n, batch_size)
    try:
        for start in progress(starts, total=len(starts), desc=desc) if show_progress else starts:
            rows = range(start, min(n, start + batch_size))
            states = [_prefill(s.lm, [s.ids[r] for r in rows]) for s in streams]
            new: list[list[int]] = [[] for _ in rows]
            ended = [False] * len(rows)
            done = torch.zeros(len(rows), dtype=torch.bool, device=home)
            for _ in range(max_new_tokens):
                nxt = vocab.token(combine([vocab.select(st.logits).to(home) for st in states]))
                is_eos = torch.isin(nxt, eos)
                for i, (token, stop_here, finished) in enumerate(
                    zip(nxt.tolist(), is_eos.tolist(), done.tolist(), strict=True)
                ):
                    if finished:
                        continue
                    if stop_here:
                        ended[i] = True
                        continue
                    new[i].append(token)
                    if stop and any(s in text_lm.decode(new[i][-16:]) for s in stop):
                        ended[i] = True
                done |= torch.tensor(ended, device=home)
                if bool(done.all()):
                    break
                fed = torch.where(done, torch.full_like(nxt, text_lm.pad_id), nxt)
                for s, st in zip(streams, states, strict=True):
                    _step(s.lm, st, fed)
            for ids, stopped in zip(new, ended, strict=True):
                out.append(BaselineOutput(_cut(text_lm.decode(ids), stop), tuple(ids), stopped))
    finally:
        for s, mode in zip(streams, modes, strict=True):
            s.lm.model.train(mode)
    return out


def _cut(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first stop string (stripped, as URIAL's answers), or all of it."""
    if not stop:
        return text
    cuts = [i for i in (text.find(s) for s in stop) if i != -1]
    return text[: min(cuts)].strip() if cuts else text.strip()
