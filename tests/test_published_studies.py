"""Every published folder is a registered study: ``izoo study NAME`` plans exactly the cells of
``figures/NAME`` (dataset, method label, seed), each with the config the folder recorded.

A folder records each cell's config digest in study.json's ``cells_from``; folders published
before it did record one cell's whole config (``example_config``) only: there the example cell's
config is checked by its digest, and every other cell against the example with its own seed,
method and swept settings (as ``izoo verify`` rebuilds a cell).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference_zoo.cli import main
from inference_zoo.core.config import RunConfig
from inference_zoo.experiment.study import plan_study
from inference_zoo.experiment.verify import cell_config, has_digest
from inference_zoo.studies import STUDIES
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


def test_every_folder_under_figures_is_a_published_study_or_a_tuning():
    tunings = sorted(p.parent.name for p in FIGURES.glob("*/tuning.json"))  # izoo tune --publish wrote them
    assert "tuned_quick" in tunings and not set(tunings) & set(FOLDERS)
    assert sorted(p.name for p in FIGURES.iterdir() if p.is_dir()) == sorted(FOLDERS + tunings)
    assert [f for f in FOLDERS if f not in STUDIES.names()] == []


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


def test_izoo_list_shows_every_study(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in STUDIES.names())
    assert "(from mixture_converged)" in out
