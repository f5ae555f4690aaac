"""The batched column grid: every row's logits equal a fresh forward pass over that row's tokens."""

from __future__ import annotations

import random

import pytest
import torch

from nudging.lockstep import BatchedCachedLM


@pytest.mark.parametrize("compact_every", [0, 3])
def test_rows_with_rollbacks_match_fresh_forward_passes(zoo, compact_every: int) -> None:
    model = zoo.base.model
    vocab = model.config.vocab_size
    rng = random.Random(0)
    lm = BatchedCachedLM(model, n_rows=3, pad_id=0)
    targets = [[rng.randrange(1, vocab) for _ in range(rng.randrange(3, 12))] for _ in range(3)]
    for step in range(12):
        # some rows grow by a few tokens, some roll back and take another branch, some wait
        asks = {}
        for row in range(3):
            action = rng.choice(["grow", "grow", "rollback", "wait"])
            if action == "wait" and step:
                continue
            if action == "rollback":
                targets[row] = targets[row][: rng.randrange(1, len(targets[row]) + 1)]
            targets[row] = targets[row] + [rng.randrange(1, vocab) for _ in range(rng.randrange(1, 4))]
            need = tuple(sorted(rng.sample(range(len(targets[row])), 2)))
            asks[row] = (list(targets[row]), need)
        answers = lm.sync_many(asks)
        for row, (ids, need) in asks.items():
            with torch.no_grad():
                fresh = model(input_ids=torch.tensor([ids])).logits[0]
            for pos in {*need, len(ids) - 1}:
                torch.testing.assert_close(answers[row][pos], fresh[pos], atol=1e-4, rtol=1e-4)
        if compact_every and step % compact_every == compact_every - 1:
            lm._compact()
            assert lm.width == max(len(r.ids) for r in lm.rows)


def test_sync_many_rejects_an_empty_target(zoo) -> None:
    lm = BatchedCachedLM(zoo.base.model, n_rows=1, pad_id=0)
    with pytest.raises(ValueError, match="empty"):
        lm.sync_many({0: ([], ())})
