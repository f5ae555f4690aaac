"""The one runner every paper's reproduction goes through.

It owns what every paper needs once: the TOML config (type-checked), ``--seed`` (it seeds the world, the
training orders and the evaluation), several seeds at the tiny scale with per-seed values and the
across-seed mean and interval, the paper-scale preflight, the output folder (checked first, written
last), stage logs, resume, the manifest, claims and REPORT.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import importlib.metadata
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reprokit.cli import (
    add_common_args,
    add_debug_flag,
    default_config_path,
    load_toml_config,
    parse_common,
    positive_int,
)
from reprokit.config import config_from_mapping
from reprokit.errors import ConfigError
from reprokit.reproduce.output import check_output_dir, staged_output
from reprokit.reproduce.preflight import preflight
from reprokit.reproduce.spec import PaperSpec, RunContext
from reprokit.results.claims import paper_claims
from reprokit.threads import apply_threads

__all__ = ["ENTRY_POINT_GROUP", "available_papers", "load_config", "load_spec", "main", "run"]

logger = logging.getLogger("reprokit.reproduce")
ENTRY_POINT_GROUP = "reprokit.papers"


def script_name(paper: str) -> str:
    """``reproduce/<paper>.py`` with the paper's dashes as underscores (a script is named like a module)."""
    return f"reproduce/{paper.replace('-', '_')}.py"


def available_papers() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed paper packages that registered a spec under the ``reprokit.papers`` entry points."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _drop_shadowing_script_dir(paper: str) -> None:
    """``reproduce/<paper>.py`` is named like its package: keep the script's folder off ``sys.path`` so
    that importing the package finds the package, not the script (the only place this is handled)."""
    module = paper.replace("-", "_")
    sys.path[:] = [
        p
        for p in sys.path
        if not (Path(p or ".") / f"{module}.py").is_file() or Path(p or ".").name != "reproduce"
    ]
    shadow = sys.modules.get(module)
    if (
        shadow is not None
        and getattr(shadow, "__file__", "")
        and Path(shadow.__file__).parent.name == "reproduce"
    ):
        del sys.modules[module]


def load_spec(paper: str) -> PaperSpec:
    """The `PaperSpec` a paper package registered; a clear error naming the installed ones otherwise."""
    _drop_shadowing_script_dir(paper)
    papers = available_papers()
    if paper not in papers:
        raise ConfigError(
            f"no paper package named {paper!r} is installed; installed: {sorted(papers) or 'none'}. "
            f"Install it with `pip install ./shared ./packages/{paper}`."
        )
    spec = papers[paper].load()
    if not isinstance(spec, PaperSpec):
        raise TypeError(f"entry point {paper!r} must point to a PaperSpec, got {type(spec).__name__}")
    return spec


def load_config(spec: PaperSpec, *, scale: str, path: Path | None = None, smoke: bool = False) -> Any:
    """The paper's config: ``--config`` if given, else ``reproduce/configs/<paper>/<scale or smoke>.toml``
    when run inside the repository, else the config class's defaults. Every key is type-checked."""
    if path is None:
        try:
            candidate = default_config_path(spec.name, "smoke" if smoke else scale)
        except FileNotFoundError:
            candidate = None
        if candidate is not None and candidate.is_file():
            path = candidate
        elif smoke:
            raise ConfigError(
                f"--smoke needs reproduce/configs/{spec.name}/smoke.toml; run from the repository."
            )
    raw = load_toml_config(path) if path is not None else {}
    try:
        return config_from_mapping(spec.config_class, raw)
    except ConfigError as err:
        raise ConfigError(f"{path or 'default config'}: {err}") from None


def _section_dict(cfg: Any, scale: str) -> dict[str, Any]:
    return {scale: dataclasses.asdict(getattr(cfg, scale))}


def launcher_rank() -> int:
    """This process's global rank under a distributed launcher (``RANK``, set by accelerate and torchrun);
    0 when run plainly."""
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def run(
    spec: PaperSpec,
    cfg: Any,
    *,
    scale: str,
    out: str | Path,
    seed: int = 0,
    n_seeds: int | None = None,
    cache_dir: Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    resume: bool = True,
    jobs: int | None = 1,
    threads: int | None = None,
    title_suffix: str = "",
) -> Path:
    """Run every experiment of `spec` at `scale` over the seeds, then write tables, claims and the report.

    Seeds are ``seed, seed + 1, ...`` (``n_seeds`` of them, default: the scale section's ``n_seeds``).
    Nothing is written to `out` unless the whole run succeeds. ``jobs > 1`` runs seeds in that many
    worker processes (None: one per seed), each with ``threads`` torch threads; a seed's results do not
    depend on ``jobs``.
    """
    from reprokit.cli import resolve_cache_dir
    from reprokit.reproduce.seeds import SeedResults, aggregate_seeds
    from reprokit.results import RunOutput, Table, atomic_write_text

    section = getattr(cfg, scale)
    n = int(n_seeds if n_seeds is not None else getattr(section, "n_seeds", 1))
    if n < 1:
        raise ConfigError(f"n_seeds must be >= 1, got {n}")
    out_path = check_output_dir(out)
    rank = launcher_rank()
    if rank:  # under `accelerate launch` / torchrun every rank runs the experiments (their collectives
        # need it), and only rank 0 writes the results
        logger.info("rank %d: running the experiments, rank 0 writes %s", rank, out_path)
        out_path = Path(tempfile.mkdtemp(prefix=f"reprokit-rank{rank}-"))
    if scale == "paper" and spec.requirements is not None:
        found = preflight(spec.requirements(section))
        logger.info("preflight: all %d models and data sets found", len(found))
    if device == "auto" and scale == "tiny":
        device = "cpu"
    seeds = [seed + i for i in range(n)]
    experiments = spec.experiments_for(scale)
    tables = [e for e in experiments if e.kind == "table"]
    results = SeedResults(seeds, keys={e.name: e.keys for e in tables})
    cache = resolve_cache_dir(cache_dir)
    t0 = time.time()
    contexts = [
        RunContext(spec.name, scale, s, i, n, cache, device, dtype, resume, _t0=t0)
        for i, s in enumerate(seeds)
    ]
    with staged_output(out_path) as stage:
        config = {"seeds": seeds, **_section_dict(cfg, scale)}
        output = RunOutput(stage, paper=spec.name, scale=scale, seed=seed, config=config, device=device)
        for seed_output in _run_seeds(spec, section, contexts, stage, jobs, threads):
            for name, frame in seed_output.frames.items():
                results.frames.setdefault(name, []).append(frame)
            output.figures.extend(seed_output.figures)
            for name, seconds in seed_output.timings.items():
                output.manifest.timings[name] = output.manifest.timings.get(name, 0.0) + seconds
        for exp in tables:
            per_seed, mean = aggregate_seeds(results.frames[exp.name], seeds, exp.keys)
            caption = exp.caption.rstrip()
            if n > 1:
                span = (
                    f"Mean over {n} seeds ({seeds[0]}..{seeds[-1]}); [lo, hi]: 95% t-interval across seeds."
                )
                caption = f"{caption} {span}".strip()
                Table(f"{exp.name}_per_seed", per_seed, f"{exp.caption.rstrip()} One row per seed.").save(
                    stage
                )
            output.table(Table(exp.name, mean, caption, interval_suffixes=("_lo", "_hi")))
        for exp in (e for e in experiments if e.kind == "items"):  # per item: csv only, not in the report
            atomic_write_text(stage / f"{exp.name}.csv", Table(exp.name, results.stacked(exp.name)).to_csv())
        with output.time("claims"):
            for claim in spec.claims(results, section):
                output.claim(claim)
            for comparison in spec.comparisons(results, section) if spec.comparisons else ():
                output.comparisons.append(comparison)
            notes = spec.notes(results, section) if spec.notes else ""
        title = f"{spec.title}, {scale} scale{title_suffix}"
        output.finish(title=title, summary=spec.summary, notes=notes)
    if rank:
        shutil.rmtree(out_path, ignore_errors=True)
        return check_output_dir(out)
    paper = paper_claims(output.claims)
    logger.info(
        "wrote %s in %.1f s: %d of %d claims hold (%d sanity checks apart)",
        out_path,
        time.time() - t0,
        sum(1 for c in paper if c.holds),
        len(paper),
        len(output.claims) - len(paper),
    )
    for c in output.claims:
        verdict = ("sanity check passes" if c.sanity else "holds") if c.holds else "FAILS"
        on_interval = {True: "holds", False: "fails", None: "no interval"}[c.holds_interval]
        logger.info(
            "  [%s; interval %s] %s: %s (expected %s)", verdict, on_interval, c.id, c.measured, c.expected
        )
    return out_path


@dataclasses.dataclass
class SeedOutput:
    """What one seed's run hands back: its tables (and item tables), saved figures and stage timings."""

    frames: dict[str, Any]
    figures: list[Path]
    timings: dict[str, float]


def run_seed(spec: PaperSpec, section: Any, ctx: RunContext, stage: Path) -> SeedOutput:
    """One seed: the setup, then every experiment in order; figures (first seed only) saved to `stage`."""
    from reprokit.results import save_figure
    from reprokit.seed import set_seed

    set_seed(ctx.seed)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    ctx.log("setup")
    setup = spec.setup(section, ctx)
    timings["setup"] = time.perf_counter() - started
    out = SeedOutput({}, [], timings)
    for exp in spec.experiments_for(ctx.scale):
        if exp.kind == "figure" and ctx.seed_index > 0:
            continue
        started = time.perf_counter()
        ctx.log("%s ...", exp.name)
        made = exp.make(setup, section)
        timings[exp.name] = time.perf_counter() - started
        ctx.log("%s done in %.1f s", exp.name, timings[exp.name])
        if exp.kind == "figure":
            out.figures.append(save_figure(made, stage / exp.name))
        else:
            out.frames[exp.name] = made
    del setup
    gc.collect()
    return out


def _worker_init(threads: int | None, scale: str) -> None:
    from reprokit.progress import configure_logging

    configure_logging("INFO")
    apply_threads(threads, scale=scale)


def _worker(paper: str, section: Any, ctx: RunContext, stage: Path) -> SeedOutput:
    return run_seed(load_spec(paper), section, ctx, stage)


def _run_seeds(
    spec: PaperSpec,
    section: Any,
    contexts: list[RunContext],
    stage: Path,
    jobs: int | None,
    threads: int | None,
) -> Iterator[SeedOutput]:
    """Every seed's output in seed order: in this process, or in `jobs` spawned worker processes (the
    spec is loaded there by name, so it must be a registered paper)."""
    jobs = len(contexts) if jobs is None else min(jobs, len(contexts))
    if jobs > 1 and spec.name not in available_papers():
        logger.info("%s is not a registered paper package: running its seeds one after another", spec.name)
        jobs = 1
    if jobs <= 1:
        for ctx in contexts:
            yield run_seed(spec, section, ctx, stage)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    logger.info("running %d seeds in %d worker processes", len(contexts), jobs)
    with ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(threads, contexts[0].scale),
    ) as pool:
        futures = [pool.submit(_worker, spec.name, section, ctx, stage) for ctx in contexts]
        try:
            for future in futures:
                yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(getattr(pool, "_processes", {}).values()):  # don't wait for other seeds
                process.terminate()
            raise


def _parse(paper: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=script_name(paper),
        description=f"Reproduce the {paper} paper's tables, figures and claims (tiny scale by default).",
    )
    add_common_args(parser, paper=paper, resumable=True)
    add_debug_flag(parser)
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help="number of seeds (seed, seed+1, ...; default: the config's n_seeds, 3 at tiny scale)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        help="worker processes for the seeds (default: one per seed at the tiny scale, 1 at the paper "
        "scale); each seed's results are the same whatever the number",
    )
    return parser.parse_args(argv)


def main(paper: str, argv: list[str] | None = None) -> int:
    """Command line of ``reproduce/<paper>.py`` and ``python -m reprokit.reproduce <paper>``."""
    from reprokit.cli import run_cli

    return run_cli(lambda args: _main(paper, args), argv, prog=script_name(paper))


def _main(paper: str, argv: list[str] | None) -> int:
    from reprokit.progress import configure_logging

    ns = _parse(paper, argv)
    args = parse_common(ns, paper=paper)
    if args.smoke and args.scale != "tiny":
        raise ConfigError("--smoke runs the tiny scale only; drop --scale paper or --smoke.")
    check_output_dir(args.out)
    configure_logging("INFO")
    spec = load_spec(paper)
    explicit = args.config if ns.config is not None else None  # checked and ~-expanded by parse_common
    cfg = load_config(spec, scale=args.scale, path=explicit, smoke=args.smoke)
    threads = apply_threads(args.threads, scale=args.scale)
    logger.info("torch CPU threads: %s", threads or "torch's default")
    run(
        spec,
        cfg,
        scale=args.scale,
        out=args.out,
        seed=args.seed,
        n_seeds=ns.seeds,
        cache_dir=args.cache_dir,
        device=args.device,
        dtype=args.dtype,
        resume=not args.fresh,
        jobs=ns.jobs if ns.jobs is not None else (None if args.scale == "tiny" else 1),
        threads=threads,
        title_suffix=" (smoke)" if args.smoke else "",
    )
    return 0
