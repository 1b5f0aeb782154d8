"""Summary tables: a stacked run's seeds share one wall time, shown as shared and not as a spread."""
from __future__ import annotations

import io

from rich.console import Console

from inference_zoo.core.results import SHARED_NOTE, mean_se_text, shared_by_stack, summary_index
from inference_zoo.experiment.display import print_summary


def rows(method: str, metric: str, values: list[float]) -> list[dict]:
    return [{"study": "s", "dataset": "grid", "method": method, "seed": s, "metric": metric, "value": v}
            for s, v in enumerate(values)]


STACKED = rows("ali", "train_seconds", [3.37, 3.37, 3.37]) + rows("ali", "recon_mse", [0.5, 0.5, 0.5])
ALONE = rows("vae", "train_seconds", [2.0, 3.0, 4.0]) + rows("vae", "recon_mse", [0.1, 0.2, 0.3])


def test_seeds_of_one_stack_share_their_wall_time_and_nothing_else_does():
    one_seed = rows("bigan", "train_seconds", [5.0])
    assert shared_by_stack(STACKED + ALONE + one_seed) == {("grid", "ali", "train_seconds")}
    summary = summary_index(STACKED + ALONE + one_seed)
    assert summary[("grid", "ali", "train_seconds")]["shared"]
    assert not summary[("grid", "ali", "recon_mse")]["shared"]  # equal metrics are a result, a zero spread
    assert mean_se_text(summary, ("grid", "ali", "train_seconds")) == "3.37 (shared)"
    assert mean_se_text(summary, ("grid", "vae", "train_seconds")) == "3.00 ± 0.58"
    assert mean_se_text(summary, ("grid", "bigan", "train_seconds")) == "5.00"
    assert mean_se_text(summary, ("grid", "ali", "recon_mse")) == "0.50 ± 0.00"


def test_the_terminal_table_marks_a_shared_time_and_says_what_it_means():
    console = Console(width=200, file=io.StringIO(), color_system=None)
    print_summary(STACKED + ALONE, console)
    text = console.file.getvalue()
    line = next(line for line in text.splitlines() if line.strip(" │|").startswith("train_seconds"))
    assert "3.37 (shared)" in line and "3 ± 0.58" in line and "± 0 " not in line
    assert SHARED_NOTE in " ".join(text.split())
    console = Console(width=200, file=io.StringIO(), color_system=None)
    print_summary(ALONE, console)  # no stack: no footnote
    assert "(shared)" not in console.file.getvalue()
