"""The reproduction spec without training: configs of every scale, seeds of the evaluation, preflight list."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from palimpsest.experiments import eval_seed
from palimpsest.paper import paper_requirements
from palimpsest.reproduce import SPEC, PaperSection, ReproduceConfig, TinySection
from palimpsest.tiny import TinyConfig
from reprokit.config import config_from_mapping
from reprokit.errors import ConfigError, DataError

CONFIGS = Path(__file__).resolve().parents[3] / "reproduce" / "configs" / "palimpsest"


def _load(name: str) -> ReproduceConfig:
    return config_from_mapping(ReproduceConfig, tomllib.loads((CONFIGS / f"{name}.toml").read_text()))


def test_committed_configs_parse_and_nest_the_setup_config() -> None:
    tiny, smoke, paper = _load("tiny"), _load("smoke"), _load("paper")
    assert tiny.tiny.n_seeds == 3 and smoke.tiny.n_seeds == 2 and paper.paper.n_seeds == 1
    assert isinstance(tiny.tiny.setup, TinyConfig) and tiny.tiny.setup.n_people == 1000
    assert smoke.tiny.setup.alice_recipe == "llama-0.3m" and smoke.tiny.k == 4
    assert paper.paper.query.n == 100_000 and paper.paper.query.retokenize
    assert len(paper.paper.suspects) == 15 and len(paper.paper.olmo_revisions) == 3
    fams = {f.name: f for f in paper.paper.families}
    assert set(fams) == {"olmo-7b", "olmo-7b-0724", "olmo-2-7b", "pythia-pile"}
    assert "EleutherAI/pythia-2.8b-deduped" in fams["pythia-pile"].suspects
    assert (paper.paper.olmo_prompt_dataset, paper.paper.olmo_prompt_tokens) == ("roneneldan/TinyStories", 20)
    assert SPEC.config_class is ReproduceConfig and SPEC.name == "palimpsest"


def test_eval_seed_keeps_seed_zero_and_separates_seeds() -> None:
    assert [eval_seed(0, d) for d in range(5)] == [0, 1, 2, 3, 4]  # the committed tables' draws
    assert len({eval_seed(s, d) for s in range(3) for d in range(1100)}) == 3 * 1100
    with pytest.raises(ValueError, match="draw must lie"):
        eval_seed(0, -1)


def test_paper_requirements_name_every_model_data_set_and_revision() -> None:
    section = _load("paper").paper
    reqs = paper_requirements(section)
    ids = {r.id for r in reqs}
    assert section.transcript in ids and section.transcript_tokenizer in ids
    assert set(section.suspects) | set(section.nulls) | set(section.ablation_references) <= ids
    assert {section.reference, section.ablation_suspect} <= ids
    olmo = [r for r in reqs if r.id == section.olmo_model and r.revision is not None]
    assert sorted(r.revision for r in olmo) == sorted(section.olmo_revisions)
    assert next(r for r in reqs if r.id == section.transcript).kind == "dataset"
    for fam in section.families:
        assert {fam.transcript_tokenizer, fam.reference, *fam.suspects, *fam.nulls} <= ids
    assert next(r for r in reqs if r.id == section.olmo_prompt_dataset).kind == "dataset"


def test_olmo_prompts_are_story_openings_or_bos(tmp_path) -> None:
    """The official ingredient test prompts with the first tokens of random stories; "" means bos-only."""
    import json
    from dataclasses import replace

    from palimpsest.paper import olmo_prompts

    folder = tmp_path / "stories"
    folder.mkdir()
    stories = ["w" * (i + 1) + " upon a time there was a cat who liked fish." for i in range(8)]
    (folder / "validation.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in stories))

    class Tok:
        bos_token_id = 1

        def __call__(self, texts, add_special_tokens):
            assert not add_special_tokens
            return {"input_ids": [[len(w) + 10 for w in t.split()] for t in texts]}

    section = replace(PaperSection(), olmo_prompt_dataset=str(folder), olmo_samples=5, olmo_prompt_tokens=4)
    prompts = olmo_prompts(section, Tok(), seed=0)
    assert len(prompts) == 5 and all(p[0] == 1 and p[2:] == [14, 11, 14] for p in prompts)
    assert len({p[1] for p in prompts}) == 5 and {p[1] for p in prompts} <= set(range(11, 19))  # 5 stories
    assert olmo_prompts(replace(section, olmo_prompt_dataset=""), Tok(), seed=0) == 5
    with pytest.raises(DataError, match="has 8 non-empty stories"):
        olmo_prompts(replace(section, olmo_samples=9), Tok(), seed=0)


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ({"tiny": {"main_fraction": 0.3}}, "main_fraction 0.3 must be one of setup.retrain_fractions"),
        ({"tiny": {"k": 3, "k_sweep": 5}}, "k_sweep must lie in [1, k = 3]"),
        ({"paper": {"olmo_revisions": ["a", "b"]}}, "needs at least 3"),
        ({"paper": {"query": {"seed": 4}}}, "query.seed is not used"),
        (
            {
                "paper": {
                    "families": [
                        {
                            "name": "pythia-deduped",
                            "subset": "s",
                            "transcript_tokenizer": "t",
                            "reference": "r",
                            "suspects": ["a"],
                        }
                    ]
                }
            },
            "family names must be distinct",
        ),
        (
            {
                "paper": {
                    "families": [
                        {
                            "name": "f",
                            "subset": "s",
                            "transcript_tokenizer": "t",
                            "reference": "a",
                            "suspects": ["a"],
                        }
                    ]
                }
            },
            "must be independent of the run's order",
        ),
        ({"tiny": {"setup": {"seed": 1}}}, "unknown config key(s) ['seed'] in [tiny.setup]"),
    ],
)
def test_section_checks(raw: dict, phrase: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(ReproduceConfig, raw)
    assert phrase in str(err.value)


def test_default_sections() -> None:
    assert TinySection().n_seeds == 3 and PaperSection().n_seeds == 1
    assert TinySection.SCALE == "tiny" and PaperSection.SCALE == "paper"


def test_ngram_claim_fails_when_a_seed_never_detects() -> None:
    """A seed whose n-gram test never reaches p <= 0.01 is not evidence that it needs more tokens."""
    import math

    import pandas as pd

    from palimpsest.claims import _ngram_claim

    tokens = pd.DataFrame({"n_tokens": [100, 300], "log10_t_p": [-1.0, -3.0]})
    found = pd.DataFrame(
        {"target_tokens": [1000, 30000], "perm_p": [0.5, 0.3], "perm_p_single": [0.2, 0.005]}
    )
    never = found.assign(perm_p_single=[0.2, 0.02])
    ok = _ngram_claim([tokens, tokens], [found, found])
    assert ok.holds and ok.measured == 100.0 and ok.per_seed == (100.0, 100.0)
    bad = _ngram_claim([tokens, tokens], [found, never])
    assert not bad.holds and not bad.holds_interval and math.isnan(bad.measured)
    assert "1 of 2 seed(s) never reached" in bad.details and "not within 30000" in bad.statement
