"""Every published folder is a registered study: ``izoo study NAME`` plans exactly the cells of
``figures/NAME`` (dataset, method label, seed), each with the config the folder recorded.

A folder records each cell's config digest in study.json's ``cells_from``; folders published
before it did record one cell's whole config (``example_config``) only: there the example cell's
config is checked by its digest, and every other cell against the example with its own seed,
method and swept settings (as ``izoo verify`` rebuilds a cell).
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from inference_zoo.cli import app, main
from inference_zoo.core.config import RunConfig
from inference_zoo.experiment.study import plan_study
from inference_zoo.experiment.verify import cell_config, has_digest
from inference_zoo.studies import STUDIES, TUNINGS
from inference_zoo.studies.base import Cell, cell_name, config_digest, derive, read_published_folder

FIGURES = Path(__file__).resolve().parents[1] / "figures"
FOLDERS = sorted(p.parent.name for p in FIGURES.glob("*/study.json"))


def published_cells_with_other_configs(folder: str, configs: list[RunConfig]) -> list[str]:
    """The cells of ``figures/folder`` that ``configs`` do not plan, and those they plan beyond
    them; else the cells they plan with another config than the folder recorded."""
    path = FIGURES / folder
    piece = read_published_folder(path)
    example = json.loads((path / "study.json").read_text())["example_config"]
    planned: dict[Cell, RunConfig] = {(c.data.label(), c.label, c.seed): c for c in configs}
    assert len(planned) == len(configs), "a cell planned twice"
    wrong = [f"not planned: {cell_name(c)}" for c in sorted(set(piece.rows) - set(planned))]
    wrong += [f"not published: {cell_name(c)}" for c in sorted(set(planned) - set(piece.rows))]
    if wrong:
        return wrong  # the configs of other cells than the published ones tell nothing more
    digests = {cell: piece.provenance[cell].get("config") for cell in piece.rows}
    cells = sorted(planned)
    if all(digests.values()):
        return [f"other config: {cell_name(c)}" for c in cells if not has_digest(planned[c], digests[c], example)]
    assert not any(digests.values()), "a folder records every cell's digest or none"
    example_config = RunConfig.from_dict(example)
    example_cell = (example_config.data.label(), example_config.label, example_config.seed)
    if not has_digest(planned[example_cell], config_digest(example), example):
        wrong.append(f"other config than the example: {cell_name(example_cell)}")
    study = STUDIES.get(folder)
    return wrong + [f"other config than the example's: {cell_name(c)}" for c in cells
                    if planned[c].saved_dict() != cell_config(study, example_config, c)[0].saved_dict()]


TUNED = sorted(p.parent.name for p in FIGURES.glob("*/tuning.json"))  # izoo tune --publish wrote them


def test_every_folder_under_figures_names_a_registered_study_or_tuning():
    assert "tuned_10k" in TUNED and not set(TUNED) & set(FOLDERS)
    assert sorted(p.name for p in FIGURES.iterdir() if p.is_dir()) == sorted(FOLDERS + TUNED)
    assert [f for f in FOLDERS if f not in STUDIES.names()] == []
    assert [f for f in TUNED if f not in TUNINGS.names()] == []


def tune_flags(command: str) -> dict[str, str]:
    """The options of a recorded ``izoo tune`` command, with the command's defaults for those not given;
    where it ran from (--out, --threads, --processes, --publish) aside."""
    import typer

    words = shlex.split(command)
    if words[:2] == ["izoo", "study"]:
        return {"--study": words[2]}  # the design's own arguments, by construction
    assert words[:2] == ["izoo", "tune"], command
    tune = typer.main.get_command(app).commands["tune"]
    flags = {p.opts[0]: str(p.default) for p in tune.params if p.param_type_name == "option" and p.default is not None
             and not p.is_flag and not p.multiple}
    flags.update(dict(zip(words[2::2], words[3::2])))
    return {k: v for k, v in flags.items() if k not in ("--out", "--threads", "--processes", "--publish")}


@pytest.mark.parametrize("folder", TUNED)
def test_the_tuning_named_after_a_folder_runs_the_commands_it_recorded(folder):
    """Each searched method@data of the folder was tuned by the design's arguments (``izoo study
    NAME --methods M --datasets D`` runs that command again) and the record agrees with them."""
    design = TUNINGS.get(folder)
    published = json.loads((FIGURES / folder / "tuning.json").read_text())
    assert published.get("figures_of", "") == design.figures_of  # the study whose figures it also has
    record = published["methods"]
    assert record
    for name, entry in record.items():
        method, data = name.split("@")
        assert method in design.methods and data in design.datasets, name
        flags = tune_flags(entry["commands"][-1])  # a search resumed with other options: the last finished it
        if "--study" in flags:
            assert flags == {"--study": folder}, name
            continue
        assert method in flags.pop("--methods").split(","), name
        wanted = {"--data": data, **{f"--{k.replace('_', '-')}": str(v) for k, v in design.arguments().items()}}
        assert flags == {**{k: v for k, v in flags.items() if k not in wanted}, **wanted}, name
        assert set(flags) - set(wanted) <= {"--storage", "--jobs", "--time", "--gpus-per-job", "--executor"}, name
        best = entry["best"]
        assert (best["budget_run_steps"], best["objective"], best["tuning_seeds"]) == \
            (design.budget, design.objective, list(range(1000, 1000 + design.seeds))), name
        assert entry["fresh_seeds"] == list(range(design.fresh_seeds)), name
        assert {k: v for k, v in best["fixed_settings"].items() if k != "eval_every"} == design.settings, name
        assert len(best.get("confirmation", {}).get("seeds", [])) == design.confirm_seeds, name


def test_a_short_search_offered_every_method_the_same_recipes():
    """docs/usage.md: below TPE's 10 random start-up trials, trial k's recipe is a draw seeded by k
    alone, so the published histories hold the same training settings at trial k, whatever the
    method, its own options, the dataset or the preset (trial 0 is each preset's own; a batch
    queued again after a kill repeats earlier recipes, and the search goes on at later numbers).
    ``tuned_quick_1seed`` was searched before the sampler was seeded by the trial's number."""
    from inference_zoo.experiment.search import read_history
    from inference_zoo.experiment.tune import TRAIN_SPACE

    by_trial: dict[int, set] = {}
    for folder in (f for f in TUNED if f != "tuned_quick_1seed"):
        for history in sorted((FIGURES / folder / "tuning").glob("*/trials.csv")):
            seen = set()
            for row in read_history(history):
                recipe = tuple(row[k] for k in TRAIN_SPACE)
                if 1 <= int(row["trial"]) < 10 and recipe not in seen:
                    by_trial.setdefault(int(row["trial"]), set()).add(recipe)
                seen.add(recipe)
    assert sorted(by_trial) == list(range(1, 10)) and all(len(recipes) == 1 for recipes in by_trial.values())


@pytest.mark.parametrize("folder", FOLDERS)
def test_the_study_named_after_a_folder_plans_its_cells_with_their_recorded_configs(folder):
    assert published_cells_with_other_configs(folder, plan_study(STUDIES.get(folder))) == []


def test_a_study_plans_a_dataset_its_own_number_of_seeds_unless_seeds_are_given():
    study = STUDIES.get("mixture_coverage")  # the ring was published at seed 0 only
    seeds = {d: sorted({c.seed for c in plan_study(study) if c.data.name == d}) for d in study.datasets}
    assert seeds == {"grid": [0, 1, 2, 3, 4], "ring": [0]}
    assert {c.seed for c in plan_study(study, [0, 1]) if c.data.name == "ring"} == {0, 1}
    assert derive(study, "x", "", seeds=2).seeds_by_dataset == {}  # seeds given: every dataset's
    with pytest.raises(ValueError, match="has no dataset moon"):
        derive(study, "x", "", seeds_by_dataset={"moon": 1})


def test_a_derived_study_is_its_base_at_other_settings():
    sweep = STUDIES.get("ali_grid_lr_sweep")
    assert sweep.base == "mixture_converged" and sweep.figures is STUDIES.get("mixture_converged").figures
    configs = plan_study(sweep, [0])
    assert sorted(c.label for c in configs) == ["ali@lr=0.0002", "ali@lr=0.0003"]
    assert {(c.study, c.train.steps, c.train.lr_schedule) for c in configs} == {("mixture_converged", 50_000, "linear")}
    # what the command line gives wins over the study's own settings; its engine stands unless given
    assert {c.train.lr for c in plan_study(sweep, [0], lr=1e-3, steps=10)} == {1e-3}
    single = STUDIES.get("ali_16k_steps")
    assert {(c.study, c.train.engine) for c in plan_study(single)} == {("compare", "single")}
    assert {c.train.engine for c in plan_study(single, engine="stacked")} == {"stacked"}


def test_a_derived_study_may_move_to_another_registered_dataset_with_its_own_evaluation():
    semi = STUDIES.get("mnist5k_semi_supervised")  # the digits study's design on real 28x28 digits
    configs = plan_study(semi, [0])
    assert {c.data.name for c in configs} == {"mnist5k"} and {c.study for c in configs} == {"semi_supervised"}
    assert sorted(c.label for c in configs) == ["ali", "bigan", "ssali@labels=100", "ssali@labels=1000", "vae"]
    assert {(c.arch.name, c.arch.z_dim, c.eval.label_counts) for c in configs} == {("dcgan", 32, (100, 1000))}
    features = STUDIES.get("mnist5k_features")
    assert {(c.data.name, c.train.steps, c.train.eval_every) for c in plan_study(features, [0])} == {
        ("mnist5k", 4_000, 1_000)}
    with pytest.raises(ValueError, match="has no dataset moon"):
        derive(semi, "x", "", datasets=("moon",))


def test_izoo_list_shows_every_study(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in STUDIES.names())
    assert "(from mixture_converged)" in out


UNDER_WAY = FIGURES.parent / "studies" / "under_way"


def test_a_part_under_way_is_a_registered_study_or_tuning_and_holds_finished_cells_without_checkpoints():
    """What studies/under_way carries to the next machine: a registered name, finished run folders
    (their config and rows) or a search's journal, and nothing that a merge could not read back."""
    parts = [p for p in UNDER_WAY.iterdir() if p.is_dir()]
    assert [p.name for p in parts if p.name not in STUDIES.names() and p.name not in TUNINGS.names()] == []
    assert [str(f) for f in UNDER_WAY.rglob("*") if f.suffix == ".pt" or f.name == ".lock"] == []
    for part in parts:
        runs = [c.parent for c in part.rglob("config.json")]
        assert runs or list(part.rglob("search.journal")), f"{part.name}: nothing to go on from"
        unfinished = [str(r) for r in runs if not (r / "results.csv").is_file()]
        assert unfinished == [], "carry finished runs only"
        for run in runs:
            RunConfig.from_dict(json.loads((run / "config.json").read_text()))  # reads back
