"""The paper scale: the task's fine-tuned OLMo models, its data set and MMLU, behind the same `Source`.

Both the models and the data are gated on the Hugging Face hub: request access on the organizers' pages
(the preflight names them), log in with ``huggingface-cli login``, and the files are read from the local
hub cache. Facts to trace are the data's subtask-2 PII questions rewritten subject first, as the released
code does ("What is the birth date of X?" -> "What is X's birth date?").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprokit.errors import DataError
from reprokit.reproduce import Requirement
from selective_amnesia.records import Row
from selective_amnesia.tracing import Fact

if TYPE_CHECKING:
    from reprokit.lm import LanguageModel
    from reprokit.reproduce import RunContext
    from selective_amnesia.data import UnlearningData
    from selective_amnesia.records import MCQuestion

__all__ = ["PaperSource", "paper_requirements", "subject_first_facts"]

_ACCESS = (
    "gated: request access on its hub page (the SemEval-2025 Task 4 organizers grant it), then run "
    "`huggingface-cli login` on this machine"
)
_QUESTION = re.compile(r"^What is the (?P<attr>.+?) of (?P<name>.+?)\?$")


def subject_first_facts(rows: Sequence[Row], *, task: str = "Task2") -> list[Fact]:
    """Subject-first facts from the PII questions of `task` ("What is X's birth date?" -> answer's text)."""
    facts = []
    for row in rows:
        if row.task != task or row.probe != "qa":
            continue
        match = _QUESTION.match(row.input.strip())
        if match is None:
            continue
        name, attr = match["name"], match["attr"]
        prompt = f"What is {name}'s {attr}?"
        facts.append(Fact(prompt, name, " " + row.output.strip(), id=row.id))
    return facts


def paper_requirements(section: Any) -> list[Requirement]:
    """The target model, the data set and MMLU, looked up before any work starts."""
    reqs = [
        Requirement("model", section.model, why=f"the task's fine-tuned target; {_ACCESS}"),
        Requirement("dataset", section.dataset, why=f"forget, retain and MIA files; {_ACCESS}"),
        Requirement("dataset", section.mmlu_dataset, why="MMLU test and dev splits for the utility score"),
    ]
    if section.second_model:
        reqs.append(Requirement("model", section.second_model, why="second model traced"))
    return reqs


class PaperSource:
    """The paper's target model, data, MIA documents and MMLU (a `selective_amnesia.experiments.Source`)."""

    def __init__(self, section: Any, ctx: RunContext) -> None:
        self.section = section
        self.ctx = ctx

    @cached_property
    def snapshot(self) -> Path:
        """The data set's files in the local hub cache (downloaded once with a token that has access)."""
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(self.section.dataset, repo_type="dataset"))

    def _files(self, pattern: str) -> list[str]:
        files = sorted(str(p) for p in self.snapshot.glob(pattern))
        if not files:
            raise DataError(
                f"{self.section.dataset}: no file matches {pattern!r} in {self.snapshot}; set the [paper] "
                "file patterns to the data set's layout."
            )
        return files

    @cached_property
    def data(self) -> UnlearningData:
        """Forget and retain rows (the split chosen by ``data_split``: train or validation)."""
        from selective_amnesia.data import load_unlearning_data

        split = self.section.data_split
        return load_unlearning_data(
            self._files(self.section.forget_files.format(split=split)),
            self._files(self.section.retain_files.format(split=split)),
        )

    @cached_property
    def members(self) -> list[str]:
        """MIA member documents."""
        from selective_amnesia.data import load_documents

        return load_documents(self._files(self.section.member_files), what="MIA members")

    @cached_property
    def nonmembers(self) -> list[str]:
        """MIA non-member documents."""
        from selective_amnesia.data import load_documents

        return load_documents(self._files(self.section.nonmember_files), what="MIA non-members")

    @cached_property
    def _mmlu(self) -> tuple[list[MCQuestion], list[MCQuestion]]:
        from selective_amnesia.scoring import load_mmlu

        return load_mmlu(dataset=self.section.mmlu_dataset)

    @property
    def knowledge(self) -> list[MCQuestion]:
        """MMLU test questions."""
        return self._mmlu[0]

    @property
    def knowledge_shots(self) -> list[MCQuestion]:
        """MMLU dev questions (the few-shot examples, per subject)."""
        return self._mmlu[1]

    @cached_property
    def trace_facts(self) -> list[Fact]:
        """The subtask-2 PII questions, subject first (the run traces the first ``max_facts``)."""
        facts = subject_first_facts(self.data.rows)
        if not facts:
            raise DataError(f"{self.section.dataset}: no Task2 QA rows of the form 'What is the X of NAME?'")
        return facts

    def _load(self, name: str) -> LanguageModel:
        from reprokit.lm import load_lm

        return load_lm(name, dtype=self.ctx.dtype, device=self.ctx.device)

    def target_lm(self) -> LanguageModel:
        """The task's fine-tuned OLMo."""
        return self._load(self.section.model)

    def second_lm(self) -> LanguageModel | None:
        """A second model to trace, if the config names one."""
        return self._load(self.section.second_model) if self.section.second_model else None
