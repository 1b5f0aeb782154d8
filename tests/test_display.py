"""The training progress: a bar line that fits the terminal, plain lines where no bar is drawn."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from inference_zoo.core.config import RunConfig
from inference_zoo.experiment.display import TerminalDisplay, _seed_text

LOSSES = {"loss_discriminator": 1.2345, "loss_generator": 0.98, "cycle": 0.5}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trained(display: TerminalDisplay, clock: Clock, configs: list[RunConfig], phase: str, steps: list[int],
            total: int = 1500, seconds_per_report: float = 10.0) -> None:
    update = display.progress_for(configs)
    for step in steps:
        clock.now += seconds_per_report
        update(phase, step, total, LOSSES)


def drawn(width: int, configs: list[RunConfig], phase: str = "alice") -> list[str]:
    console = Console(width=width, force_terminal=True, color_system=None, file=io.StringIO())
    clock = Clock()
    display = TerminalDisplay(True, console=console, clock=clock)
    trained(display, clock, configs, phase, [100, 200, 600])
    console.print(display.bar)
    return console.file.getvalue().splitlines()


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160])
def test_the_count_rate_and_eta_fit_the_terminal(width):
    # reports at steps 100, 200, 600 10 s apart: 500 steps in 20 s after the first report, which only
    # starts the clock: 25 steps/s, 900 steps to go: 36 s
    lines = drawn(width, [RunConfig(method="alice", seed=s) for s in range(5)])
    assert all(len(line) <= width for line in lines), lines
    assert "600/1500  25 steps/s 0:00:36" in lines[0], lines
    assert "━" in lines[0]  # a bar
    assert "loss_discriminator=1.23 loss_generator=0.98 cycle=0.5" in "\n".join(lines)  # beside or below, whole
    if width >= 80:
        assert lines[0].startswith("alice seeds 0-4 ")


def test_a_long_label_is_shortened_before_the_count_is_cut():
    configs = [RunConfig(method="posthoc", seed=s, variant=v) for s in range(3) for v in ("lr=0.0003", "lr=0.001")]
    lines = drawn(80, configs, phase="gan")
    assert lines[0].startswith("posthoc 6 runs gan ") and "600/1500  25 steps/s 0:00:36" in lines[0], lines
    wide = drawn(160, configs, phase="gan")
    assert wide[0].startswith("posthoc lr=0.0003|lr=0.001 seeds 0-2 gan "), wide


def test_no_plain_lines_beside_the_bar():
    console = Console(width=80, force_terminal=True, file=io.StringIO())
    clock = Clock()
    display = TerminalDisplay(True, console=console, clock=clock, interval=1)
    trained(display, clock, [RunConfig(method="ali", seed=0)], "ali", list(range(100, 1501, 100)))
    assert console.file.getvalue() == ""


@pytest.mark.parametrize("terminal,show_progress", [(False, True), (True, False)])
def test_without_a_bar_each_group_says_where_it_is_every_interval(terminal, show_progress):
    # piped output (not a terminal) or --no-progress: a plain line every 30 s, and at the phase's end
    console = Console(width=80, force_terminal=terminal, file=io.StringIO())
    clock = Clock()
    display = TerminalDisplay(show_progress, console=console, clock=clock, interval=30)
    configs = [RunConfig(method="posthoc", seed=s) for s in range(5)]
    update = display.progress_for(configs)
    for phase in ("gan", "posthoc"):
        for step in range(100, 1501, 100):
            clock.now += 7
            update(phase, step, 1500, LOSSES)
    lines = console.file.getvalue().splitlines()
    assert lines[:3] == [
        "posthoc seeds 0-4 gan: step 500/1500 (33%), 14.3 steps/s, ETA 0:01:10, "
        "loss_discriminator=1.23 loss_generator=0.98 cycle=0.5",
        "posthoc seeds 0-4 gan: step 1000/1500 (67%), 14.3 steps/s, ETA 0:00:35, "
        "loss_discriminator=1.23 loss_generator=0.98 cycle=0.5",
        "posthoc seeds 0-4 gan: step 1500/1500 (100%), 14.3 steps/s, phase done, "
        "loss_discriminator=1.23 loss_generator=0.98 cycle=0.5"]
    assert [line.split(":")[0] for line in lines[3:]] == ["posthoc seeds 0-4 posthoc"] * 3  # the second phase named
    assert "step 1500/1500 (100%)" in lines[-1] and "phase done" in lines[-1]


def test_seeds_are_written_as_ranges():
    assert _seed_text([0, 1, 2, 3, 4]) == "0-4"
    assert _seed_text([0, 1, 5, 6, 7, 9]) == "0,1,5-7,9"
    assert _seed_text([3]) == "3"
