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
from reprokit.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[3] / "reproduce" / "configs" / "palimpsest"


def _load(name: str) -> ReproduceConfig:
    return config_from_mapping(ReproduceConfig, tomllib.loads((CONFIGS / f"{name}.toml").read_text()))


def test_committed_configs_parse_and_nest_the_setup_config() -> None:
    tiny, smoke, paper = _load("tiny"), _load("smoke"), _load("paper")
    assert tiny.tiny.n_seeds == 3 and smoke.tiny.n_seeds == 2 and paper.paper.n_seeds == 1
    assert isinstance(tiny.tiny.setup, TinyConfig) and tiny.tiny.setup.n_people == 1000
    assert smoke.tiny.setup.alice_recipe == "llama-0.3m" and smoke.tiny.k == 4
    assert paper.paper.query.n == 100_000 and paper.paper.query.retokenize
    assert len(paper.paper.suspects) == 12 and len(paper.paper.olmo_revisions) == 3
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
    olmo = [r for r in reqs if r.id == section.olmo_model]
    assert sorted(r.revision for r in olmo) == sorted(section.olmo_revisions)
    assert next(r for r in reqs if r.id == section.transcript).kind == "dataset"


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ({"tiny": {"main_fraction": 0.3}}, "main_fraction 0.3 must be one of setup.retrain_fractions"),
        ({"tiny": {"k": 3, "k_sweep": 5}}, "k_sweep must lie in [1, k = 3]"),
        ({"paper": {"olmo_revisions": ["a", "b"]}}, "needs at least 3"),
        ({"paper": {"query": {"seed": 4}}}, "query.seed is not used"),
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
