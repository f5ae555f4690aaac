"""Test oracle: a literal re-implementation of the official nudging loop, kept apart from the package.

It follows the control flow of the official API client (fywalter/nudging `utils.py`:
`completion_with_nudging`, `complete_with_base`, `repetition_check`, `remove_redundant_repetitions`;
paraphrased in /work/shared/papers/nudging.md §1.3) statement by statement, with each completions-server
call replaced by plain Hugging Face `generate` (greedy). It imports nothing from `nudging`.

What a server call returns is modelled on an OpenAI-compatible completions endpoint (vLLM) asked for
`logprobs=1`: the generated tokens' strings (the text each token adds, with its leading space; an EOS
is a token with the empty string), the top-1 probability at each token, the text, and the finish reason
("stop" at EOS, else "length"). Lengths are counted with the base model's tokenizer instead of
gpt-3.5's tiktoken encoding. Prompts follow the serving convention of the package under test: the base
prompt is encoded with the tokenizer's special tokens (BOS), the nudging prompt is a rendered chat
prompt that carries its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Response:
    """One completion call's answer, as the official client reads it."""

    text: str
    tokens: list[str]
    top_probs: list[float]
    finish_reason: str


@dataclass(frozen=True)
class Server:
    """One model behind a completions endpoint: greedy `generate` on `prompt`, at most `max_tokens`."""

    model: Any
    tokenizer: Any
    add_special_tokens: bool

    @torch.no_grad()
    def complete(self, prompt: str, max_tokens: int) -> Response:
        tok = self.tokenizer
        ids = tok(prompt, add_special_tokens=self.add_special_tokens)["input_ids"]
        eos = tok.eos_token_id
        x = torch.tensor([ids])
        out = self.model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=max_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=tok.pad_token_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
        generated = out.sequences[0, len(ids) :].tolist()
        probs = [torch.softmax(step[0].float(), dim=-1) for step in out.logits]
        assert [int(p.argmax()) for p in probs] == generated, "generate was not plain greedy decoding"
        strings = []
        before = tok.decode(ids, skip_special_tokens=True)
        for i in range(len(generated)):
            after = tok.decode(ids + generated[: i + 1], skip_special_tokens=True)
            assert after.startswith(before), "a token rewrote the text before it (use a cleaner tokenizer)"
            strings.append(after[len(before) :])
            before = after
        return Response(
            text="".join(strings),
            tokens=strings,
            top_probs=[float(p.max()) for p in probs],
            finish_reason="stop" if generated and generated[-1] == eos else "length",
        )


@dataclass(frozen=True)
class Answer:
    raw_answer: str
    stop_reason: str
    rounds: int


def official_nudging(
    base: Server,
    nudger: Server,
    prefix_base: str,
    prefix_nudging: str,
    *,
    top_prob_thres: float,
    completion_token_num: int = 16,
    completion_token_num_nudging: int = 16,
    max_token_total: int = 512,
    max_round: int = 150,
) -> Answer:
    """The official `completion_with_nudging` loop (greedy), with the base tokenizer as length counter."""

    def n_tokens(s: str) -> int:
        return len(base.tokenizer(s, add_special_tokens=False)["input_ids"])

    output = ""
    rounds = 0
    stop_reason = None
    repeat_count, last_nudge = 0, ""
    while n_tokens(output) < max_token_total and rounds < max_round:
        rounds += 1
        look = nudger.complete(prefix_nudging + output, completion_token_num_nudging)
        if look.finish_reason == "stop":
            stop_reason = "nudging_model_stop"
            output += look.text
            break
        # Stage 1: inject nudging words until the base model agrees or is confident.
        found = False
        base_response: Response | None = None
        spaces = " " * (len(look.text) - len(look.text.lstrip(" ")))
        words = look.text.lstrip(" ").split(" ")
        n = 0 if len(words) > 1 else 1
        while not found and n < len(words) - 1:
            n += 1
            next_word = " " + words[n]
            if next_word == " ":
                continue
            base_response = base.complete(
                prefix_base + output + spaces + " ".join(words[:n]), completion_token_num
            )
            if next_word.startswith(base_response.tokens[0]):
                found = True
            else:
                found = base_response.top_probs[0] >= top_prob_thres
        nudge = spaces + " ".join(words[:n])
        if nudge == last_nudge:
            repeat_count += 1
            if repeat_count >= 3:
                stop_reason = "repeated_nudging_words"
                break
        else:
            last_nudge, repeat_count = nudge, 0
        output += nudge
        if not found or base_response is None or base_response.text == "":
            continue
        # Stage 2
        budget = max_token_total - n_tokens(output)
        output += _complete_with_base(
            base, prefix_base, output, base_response, budget, completion_token_num, top_prob_thres, n_tokens
        )
    if rounds >= max_round and not stop_reason:
        stop_reason = "round"
    if n_tokens(output) >= max_token_total and not stop_reason:
        stop_reason = "length"
    return Answer(remove_redundant_repetitions(output), str(stop_reason), rounds)


def _complete_with_base(
    base: Server,
    prefix_base: str,
    output: str,
    stage1: Response,
    budget: int,
    chunk: int,
    thres: float,
    n_tokens,
) -> str:
    """The official `complete_with_base`: the Stage-1 call's first token, then confident base text."""
    written = stage1.tokens[0]
    tokens, probs, completion = stage1.tokens[1:], stage1.top_probs[1:], "".join(stage1.tokens[1:])
    reuse_stage1 = True
    response: Response | None = None
    found = False
    while n_tokens(written) < budget and not found:
        if not reuse_stage1:
            response = base.complete(prefix_base + output + written, chunk)
            tokens, probs, completion = response.tokens, response.top_probs, response.text
        reuse_stage1 = False
        if completion in written:
            break
        position = -1
        for i, p in enumerate(probs):
            if p < thres:
                found, position = True, i
                break
        new = "".join(tokens) if position == -1 else "".join(tokens[:position])
        if len(new.split(" ")) > 5 and new in output + written:
            break
        written += new
        if response is not None and response.finish_reason == "stop":
            break
    return written


def remove_redundant_repetitions(s: str) -> str:
    """The official post-processing: strip, then drop the repeated suffix its binary search finds."""
    s = s.strip()

    def repeats(length: int) -> bool:
        return length >= 30 and s[:-length].endswith(s[-length:])

    def longest() -> int:
        lo, hi, best = 0, len(s), 0
        while lo <= hi:
            mid = (lo + hi) // 2
            if repeats(mid):
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best

    size = longest()
    while size:
        s = s[:-size]
        size = longest()
    return s
