"""The batched ragged cache: every row's logits equal a fresh forward pass over that row's tokens."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from nudging import lockstep
from nudging.lockstep import BatchedCachedLM


@pytest.mark.parametrize(("split", "attention"), [(False, "sdpa"), (True, "sdpa"), (True, "eager")])
def test_rows_with_rollbacks_match_fresh_forward_passes(
    zoo, monkeypatch, split: bool, attention: str
) -> None:
    """Rows grow, roll back and wait at random; `split` makes every sync run as two passes of row subsets;
    eager attention takes the 4D mask as additive floats, sdpa as booleans."""
    if split:
        monkeypatch.setattr(lockstep, "_PASS_OVERHEAD_TOKENS", -1000)
    model = zoo.base.model
    if attention != model.config._attn_implementation:
        model = copy.deepcopy(model)
        model.set_attn_implementation(attention)
    assert BatchedCachedLM.supports(model)
    vocab = model.config.vocab_size
    rng = random.Random(0)
    lm = BatchedCachedLM(model, n_rows=3, pad_id=0)
    targets = [[rng.randrange(1, vocab) for _ in range(rng.randrange(3, 12))] for _ in range(3)]
    passes = 0
    for step in range(12):
        # some rows grow by a few tokens, some roll back and take another branch, some wait
        asks = {}
        for row in range(3):
            action = rng.choice(["grow", "grow", "rollback", "wait"])
            if action == "wait" and step:
                continue
            if action == "rollback":
                targets[row] = targets[row][: rng.randrange(1, len(targets[row]) + 1)]
            targets[row] = targets[row] + [rng.randrange(1, vocab) for _ in range(rng.randrange(1, 5))]
            need = tuple(sorted(rng.sample(range(len(targets[row])), 2)))
            asks[row] = (list(targets[row]), need)
        answers = lm.sync_many(asks)
        for row, (ids, need) in asks.items():
            with torch.no_grad():
                fresh = model(input_ids=torch.tensor([ids])).logits[0]
            for pos in {*need, len(ids) - 1}:
                torch.testing.assert_close(answers[row][pos], fresh[pos], atol=1e-4, rtol=1e-4)
        passes += 1 if asks else 0
    if split:
        assert lm.passes > passes  # syncs with rows of different lengths ran as two passes


def test_sync_many_rejects_an_empty_target(zoo) -> None:
    lm = BatchedCachedLM(zoo.base.model, n_rows=1, pad_id=0)
    with pytest.raises(ValueError, match="empty"):
        lm.sync_many({0: ([], ())})


def test_flash_attention_is_not_batched(zoo) -> None:
    """Kernels that take no 4D mask cannot read ragged rows: `nudge_batch` decodes those one by one."""
    model = copy.deepcopy(zoo.base.model)
    model.config._attn_implementation = "flash_attention_2"  # only read, never run, here
    assert not BatchedCachedLM.supports(model)
    assert BatchedCachedLM.supports(zoo.base.model)


def test_rows_that_end_early_are_packed_and_match_the_reference(zoo, monkeypatch) -> None:
    """Ragged prompts in one batch, no question left to refill: streams that end free their rows, the
    last streams move into them, and every answer still equals the stateless reference's."""
    from nudging import NudgingConfig, nudge_reference
    from nudging.lockstep import nudge_batch

    moves: list[tuple[int, int]] = []
    original = BatchedCachedLM.move_row

    def spy(self, src: int, dst: int) -> None:
        moves.append((src, dst))
        original(self, src, dst)

    monkeypatch.setattr(BatchedCachedLM, "move_row", spy)
    args = (zoo.base, zoo.nudger_same)
    config = NudgingConfig(gamma=0.4, max_new_tokens=40, lookahead_tokens=2)  # the second answer is shortest
    questions = [zoo.questions[2], zoo.questions[0] + " Please answer in detail.", *zoo.questions[1:]]
    batch = nudge_batch(*args, questions, config, batch_size=len(questions))
    assert moves and all(src > dst for src, dst in moves)
    for q, b in zip(questions, batch, strict=True):
        ref = nudge_reference(*args, q, config)
        assert (b.text, b.segments, b.stop_reason) == (ref.text, ref.segments, ref.stop_reason)
