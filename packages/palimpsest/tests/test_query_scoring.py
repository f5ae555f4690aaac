"""Sharded, resumable per-example scoring (`palimpsest.scoring`), the query plot, and the `query` command's
new outputs. Two ranks are simulated in one process by calling `score_shard` with an explicit rank."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import palimpsest.scoring as scoring
from palimpsest import QueryConfig, Transcript, query_test, query_test_from_losses
from palimpsest.cli import main as cli_main
from palimpsest.query import example_losses, plot_query, query_figure, query_trend
from palimpsest.scoring import (
    Sharding,
    chunk_ranges,
    merge_shards,
    score_examples,
    score_shard,
    scores_folder,
    shard_chunks,
)
from reprokit.errors import ConfigError, DataError
from reprokit.lm import LanguageModel
from reprokit.scoring import score_token_ids
from reprokit.stats import log10_p_to_str
from reprokit.tokenizer import train_tokenizer
from reprokit.zoo import build_model

CORPUS = [f"Parcel {i} goes to {c} on day {i % 9}." for i in range(60) for c in ("Lima", "Bern")]
N = 37  # examples: not a multiple of the chunk or batch sizes below


@pytest.fixture(scope="module")
def lms() -> dict[str, LanguageModel]:
    """Two randomly initialised 0.3M-parameter llamas (scores need no training)."""
    tok = train_tokenizer(CORPUS, vocab_size=300)
    return {
        name: LanguageModel(build_model("llama-0.3m", tok, seed=seed), tok, name=name)
        for name, seed in (("suspect", 0), ("reference", 1))
    }


@pytest.fixture(scope="module")
def data(lms) -> tuple[list[list[int]], list[int]]:
    """N token sequences of 3-12 tokens, and prompt lengths of 0 or 2."""
    rng = np.random.default_rng(0)
    vocab = len(lms["suspect"].tokenizer)
    seqs = [rng.integers(3, vocab, size=int(rng.integers(3, 13))).tolist() for _ in range(N)]
    prompts = [int(2 * (i % 3 == 0)) for i in range(N)]
    return seqs, prompts


class Counter:
    """Wraps `score_token_ids`: counts the calls and raises on call number `stop_at` (an interruption)."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls, self.stop_at = 0, stop_at

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt("stopped")
        return score_token_ids(*args, **kwargs)


# ------------------------------------------------------------------------------------------ sharding
@pytest.mark.parametrize("n_chunks", [0, 1, 2, 7, 8, 13])
@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_shards_are_contiguous_balanced_and_cover_every_chunk(n_chunks: int, world: int) -> None:
    shards = [shard_chunks(n_chunks, r, world) for r in range(world)]
    assert [i for s in shards for i in s] == list(range(n_chunks))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_chunks_cover_the_examples_in_order() -> None:
    chunks = chunk_ranges(37, 5)
    assert [(c.start, c.stop) for c in chunks] == [(i, min(i + 5, 37)) for i in range(0, 37, 5)]
    with pytest.raises(ConfigError, match="rank must be in"):
        shard_chunks(4, 2, 2)
    with pytest.raises(ConfigError, match="both rank and world"):
        Sharding(rank=0)


@pytest.mark.parametrize("world", [2, 3])
def test_simulated_ranks_merge_to_the_unsharded_scores(lms, data, tmp_path: Path, world: int) -> None:
    seqs, prompts = data
    lm = lms["suspect"]
    one = score_examples(lm, seqs, prompts, sharding=Sharding(chunk_size=5, rank=0, world=1), batch_size=2)
    direct = score_token_ids(lm, seqs, prompt_lengths=prompts, batch_size=2)
    np.testing.assert_allclose(one.sum_nll, -direct.sum_logprob, rtol=1e-5)
    np.testing.assert_array_equal(one.n_tokens, direct.n_tokens)
    assert np.all(one.sum_nll > 0)

    shards = [
        score_shard(lm, seqs, prompts, rank=r, world=world, work_dir=tmp_path, chunk_size=5, batch_size=2)
        for r in range(world)
    ]
    owned = [i for s in shards for i in s]
    assert owned == list(range(len(chunk_ranges(N, 5))))  # disjoint, in order, complete
    merged = merge_shards(lm, seqs, prompts, tmp_path, chunk_size=5)
    np.testing.assert_array_equal(merged.sum_nll, one.sum_nll)  # the same batches: identical numbers
    np.testing.assert_array_equal(merged.n_tokens, one.n_tokens)
    np.testing.assert_array_equal(merged.mean_nll, one.sum_nll / one.n_tokens)


def test_a_stopped_run_resumes_after_its_last_chunk_with_the_same_numbers(
    lms, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs, prompts = data
    lm, n_chunks = lms["suspect"], len(chunk_ranges(N, 5))
    whole = score_examples(lm, seqs, prompts, sharding=Sharding(tmp_path / "a", 5), batch_size=5)

    bars: list[dict] = []
    real_progress = scoring.progress
    monkeypatch.setattr(scoring, "progress", lambda **kw: bars.append(kw) or real_progress(**kw))
    stopper = Counter(stop_at=4)  # one batch per chunk: chunks 0-2 finish, chunk 3 is interrupted
    monkeypatch.setattr(scoring, "score_token_ids", stopper)
    work = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        score_examples(lm, seqs, prompts, sharding=Sharding(work, 5), batch_size=5, show_progress=True)
    folder = scores_folder(lm, seqs, prompts, work)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"chunk-{c.start:09d}-{c.stop:09d}.safetensors" for c in chunk_ranges(N, 5)[:3]
    ]

    counter = Counter()
    monkeypatch.setattr(scoring, "score_token_ids", counter)
    resumed = score_examples(lm, seqs, prompts, sharding=Sharding(work, 5), batch_size=5, show_progress=True)
    assert counter.calls == n_chunks - 3
    np.testing.assert_array_equal(resumed.sum_nll, whole.sum_nll)
    np.testing.assert_array_equal(resumed.n_tokens, whole.n_tokens)
    # the progress bar counts examples and starts at those already scored (tqdm then shows the ETA)
    assert [(b["total"], b["initial"], b["unit"], b["disable"]) for b in bars] == [
        (N, 0, "ex", None),
        (N, 15, "ex", None),
    ]

    again = Counter()
    monkeypatch.setattr(scoring, "score_token_ids", again)
    score_examples(lm, seqs, prompts, sharding=Sharding(work, 5), batch_size=5)
    assert again.calls == 0


def test_chunks_of_one_process_count_for_a_rerun_with_another_number(
    lms, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs, prompts = data
    lm = lms["reference"]
    first = score_shard(lm, seqs, prompts, rank=0, world=2, work_dir=tmp_path, chunk_size=5, batch_size=5)
    assert list(first) == [0, 1, 2, 3]
    with pytest.raises(DataError, match=r"4 of 8 score chunks are missing.*shared storage"):
        merge_shards(lm, seqs, prompts, tmp_path, chunk_size=5)
    counter = Counter()
    monkeypatch.setattr(scoring, "score_token_ids", counter)
    whole = score_examples(lm, seqs, prompts, sharding=Sharding(tmp_path, 5, rank=0, world=1), batch_size=5)
    assert counter.calls == 4  # chunks 4-7 only
    plain = score_examples(lm, seqs, prompts, sharding=Sharding(None, 5, rank=0, world=1), batch_size=5)
    np.testing.assert_array_equal(whole.sum_nll, plain.sum_nll)


def test_the_progress_bar_shows_on_rank_zero_only(lms, data, monkeypatch: pytest.MonkeyPatch) -> None:
    seqs, prompts = data
    bars: list[dict] = []
    real_progress = scoring.progress
    monkeypatch.setattr(scoring, "progress", lambda **kw: bars.append(kw) or real_progress(**kw))
    for rank in (0, 1):
        score_shard(lms["suspect"], seqs, prompts, rank=rank, world=2, work_dir=None, chunk_size=5,
                    show_progress=rank == 0, desc="suspect")  # fmt: skip
    assert [(b["total"], b["disable"], b["desc"]) for b in bars] == [
        (20, None, "suspect [2 processes]"),
        (17, True, "suspect [2 processes]"),
    ]


def test_scores_of_other_weights_or_sequences_are_not_reused(lms, data, tmp_path: Path) -> None:
    seqs, prompts = data
    lm = lms["suspect"]
    folder = scores_folder(lm, seqs, prompts, tmp_path)
    assert folder.name.startswith("suspect-")
    changed = copy.deepcopy(lm.model)
    with torch.no_grad():
        changed.lm_head.weight.add_(0.01)  # a retrained model saved at the same path
    retrained = LanguageModel(changed, lm.tokenizer, name="suspect")
    assert scores_folder(retrained, seqs, prompts, tmp_path) != folder
    assert scores_folder(lms["reference"], seqs, prompts, tmp_path) != folder
    assert scores_folder(lm, seqs, [p + 1 for p in prompts], tmp_path) != folder
    assert scores_folder(lm, [*seqs[:-1], seqs[-1][:-1]], prompts, tmp_path) != folder
    assert scores_folder(copy.copy(lm), seqs, prompts, tmp_path) == folder


def test_several_processes_need_a_work_folder(lms, data) -> None:
    seqs, prompts = data
    with pytest.raises(ConfigError, match="needs a work folder"):
        score_examples(lms["suspect"], seqs, prompts, sharding=Sharding(rank=0, world=2))


# ------------------------------------------------------------------------------------------ query test
@pytest.fixture(scope="module")
def transcript(data) -> Transcript:
    seqs, _ = data
    positions = np.random.default_rng(1).permutation(1000)[:N]
    return Transcript(positions=positions, token_ids=tuple(tuple(s) for s in seqs))


def test_sharded_query_test_equals_the_plain_one(lms, transcript, tmp_path: Path) -> None:
    config = QueryConfig(batch_size=4)
    plain = query_test(transcript, lms["suspect"], lms["reference"], config)
    sharded = query_test(
        transcript, lms["suspect"], lms["reference"], config, sharding=Sharding(tmp_path, chunk_size=8)
    )
    assert sharded.statistic == plain.statistic and sharded.log10_pvalue == plain.log10_pvalue
    np.testing.assert_array_equal(sharded.suspect_losses, plain.suspect_losses)
    assert len(list(tmp_path.iterdir())) == 2  # one folder of chunks per model
    # unchanged from scoring every sequence in one call: the same batches give the same numbers
    bos = lms["suspect"].tokenizer.bos_token_id
    seqs = [[bos, *s] for s in transcript.token_ids]
    before = score_token_ids(lms["suspect"], seqs, prompt_lengths=[0] * N, batch_size=4).mean_nll
    np.testing.assert_array_equal(example_losses(lms["suspect"], transcript, config), before)


# ------------------------------------------------------------------------------------------------ plot
def _synthetic(blocks: np.ndarray | None = None):
    rng = np.random.default_rng(5)
    n = 400
    pos = rng.permutation(n) * 10.0
    ref = rng.normal(3.0, 0.5, n)
    suspect = ref - 0.0004 * pos + rng.normal(0, 0.3, n)
    return query_test_from_losses(pos, suspect, ref, blocks=blocks), pos, suspect - ref


def test_the_trend_is_the_least_squares_line_and_the_binned_means() -> None:
    res, pos, d = _synthetic()
    trend = query_trend(res, bins=20)
    (slope, intercept, lo, hi), = trend.lines  # fmt: skip
    np.testing.assert_allclose([slope, intercept], np.polyfit(pos, d, 1), rtol=1e-10)
    assert -0.0006 < slope < -0.0002 and (lo, hi) == (pos.min(), pos.max())
    first = np.argsort(pos)[:20]
    assert trend.bin_positions.size == 20
    np.testing.assert_allclose(
        [trend.bin_positions[0], trend.bin_means[0]], [pos[first].mean(), d[first].mean()]
    )
    assert trend.bin_errors[0] == pytest.approx(d[first].std(ddof=1) / np.sqrt(20))
    assert trend.bin_means[-1] < trend.bin_means[0]  # later examples: relatively lower loss
    blocked, _, _ = _synthetic(blocks=np.repeat([0, 1], 200))
    assert len(query_trend(blocked).lines) == 2


def test_the_figure_shows_the_trend_and_the_test_in_its_title(tmp_path: Path) -> None:
    res, pos, d = _synthetic()
    fig = query_figure(res)
    ax = fig.axes[0]
    assert f"ρ = {res.statistic:+.4f}" in ax.get_title()
    assert f"p = {log10_p_to_str(res.log10_pvalue)}" in ax.get_title() and "n = 400" in ax.get_title()
    assert ax.get_xlabel() == "training position of the example"
    assert ax.get_ylabel() == "suspect − reference loss"
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("least-squares")]
    slope, intercept = np.polyfit(pos, d, 1)
    np.testing.assert_allclose(line.get_ydata(), slope * np.asarray(line.get_xdata()) + intercept)
    path = plot_query(res, tmp_path / "q.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["q.png"]  # written atomically, no temp file left
    no_ref = query_test_from_losses(pos, d)
    assert query_figure(no_ref).axes[0].get_ylabel() == "suspect loss"


# ------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_inputs(lms, transcript, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    paths = {}
    for name, lm in lms.items():
        lm.model.save_pretrained(root / name)
        lm.tokenizer.save_pretrained(root / name)
        paths[name] = root / name
    rows = [
        {"index": int(p), "tokens": list(t), "loss_a": float(i % 5), "loss_b": 1.0}
        for i, (p, t) in enumerate(zip(transcript.positions, transcript.token_ids, strict=True))
    ]
    paths["t"] = root / "t.jsonl"
    paths["t"].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def test_query_command_prints_progress_writes_json_plot_and_resumes(
    cli_inputs, lms, transcript, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "q.json"
    argv = [
        *("query", "--suspect", str(cli_inputs["suspect"]), "--reference", str(cli_inputs["reference"])),
        *("--transcript", str(cli_inputs["t"]), "--device", "cpu", "--dtype", "float32"),
        *("--batch-size", "4", "--chunk-size", "8", "--out", str(out)),
    ]
    assert cli_main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    work = tmp_path / "q.scores"
    assert lines[0] == (
        f"scoring {N} examples with the suspect and the reference on 1 process; "
        f"finished chunks of 8 are saved in {work} (a rerun resumes)"
    )
    assert lines[2].startswith("spearman rho = ")
    assert lines[-2:] == [f"wrote {out}", f"wrote {tmp_path / 'q.png'}"]
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(len(list(f.iterdir())) for f in work.iterdir()) == [5, 5]  # 37 examples, chunks of 8
    payload = json.loads(out.read_text())
    assert payload["plot"] == str(tmp_path / "q.png")
    assert (payload["work_dir"], payload["processes"], payload["chunk_size"]) == (str(work), 1, 8)
    expected = query_test(transcript, lms["suspect"], lms["reference"], QueryConfig(batch_size=4))
    assert payload["statistic"] == pytest.approx(expected.statistic, abs=1e-12)

    # a rerun reads every chunk back: no model call, the same result
    monkeypatch.setattr(scoring, "score_token_ids", Counter(stop_at=1))
    out.unlink()
    assert cli_main(argv) == 0
    assert json.loads(out.read_text()) == payload


def test_query_command_plots_precomputed_losses_and_refuses_work_dir(
    cli_inputs, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "cols.json"
    base = ["query", "--transcript", str(cli_inputs["t"]), "--loss-column", "loss_a", "--out", str(out)]
    assert cli_main([*base, "--reference-loss-column", "loss_b"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cols.json", "cols.png"]
    assert json.loads(out.read_text())["plot"] == str(tmp_path / "cols.png")
    assert "work_dir" not in json.loads(out.read_text())
    capsys.readouterr()
    assert cli_main([*base, "--work-dir", str(tmp_path / "w")]) == 2
    assert "--loss-column scores none" in capsys.readouterr().err
    assert cli_main([*base[:-1], str(tmp_path / "plot.png")]) == 0
    assert (tmp_path / "plot.png.png").read_bytes()[:4] == b"\x89PNG"
