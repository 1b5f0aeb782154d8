"""The speed tables of docs/speed.md, written from the benchmark records so a number is typed once.

Run as ``python benchmarks/tables.py`` after a benchmark wrote its record: it rewrites, in
docs/speed.md, each block between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``
from ``benchmarks/results/NAME.json``; ``--check`` only says (exit 1) whether a block is stale
(``tests/test_docs.py`` runs it).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "speed.md"
BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def _range(values: list[float]) -> str:
    return f"{values[0]:.2f}-{values[1]:.2f}"


def train_speed(record: dict[str, Any], source: str) -> str:
    meta = record["meta"]
    lines = [f"`benchmarks/results/{source}.json`: {meta['processor']}, {meta['threads']} threads, torch "
             f"{meta['torch']}, {meta['rounds']} interleaved rounds, medians; fp32 matmul peak "
             f"{meta['matmul_peak_flops'] / 1e9:.1f} GFLOP/s; in brackets the range of the rounds' ratios.", "",
             "| configuration | batch | run-steps/s | x plain reference | x fastest peer | share of peak |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in record["records"]:
        peer = (f"x{r['ratio_to_best_peer']:.2f} ({_range(r['ratio_to_best_peer_range'])})"
                if "ratio_to_best_peer" in r else "-")
        lines.append(f"| {r['configuration']} | {r['batch_size']} | {r['run_steps_per_s']:.1f} | "
                     f"x{r['ratio_to_reference']:.2f} ({_range(r['ratio_range'])}) | {peer} | "
                     f"{100 * r['share_of_matmul_peak']:.0f} % |")
    return "\n".join(lines) + "\n"


def cores(record: dict[str, Any], source: str) -> str:
    meta = record["meta"]
    lines = [f"`benchmarks/results/{source}.json`: {meta['processor']}, {meta['cores']} cores, median wall seconds of "
             "the whole command over each job's interleaved rounds; in brackets the range of the rounds' ratios "
             "(a setting a job's run left out: -).", "",
             "| job | rounds | default | one process | a process per core | one core | default / one core | "
             "default / one process |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in record["records"]:
        s = r["seconds"]
        cells = " | ".join(f"{s[k]:.1f} s" if k in s else "-"
                           for k in ("default", "one process", "a process per core", "one core"))
        lines.append(f"| `{r['command']}` | {len(r['rounds']['default'])} | {cells} | "
                     f"x{r['default_over_one_core']:.2f} ({_range(r['default_over_one_core_range'])}) | "
                     f"x{r['default_over_one_process']:.2f} ({_range(r['default_over_one_process_range'])}) |")
    return "\n".join(lines) + "\n"


def time_to_quality(record: dict[str, Any], source: str) -> str:
    lines = [f"`benchmarks/results/{source}.json`: `{record['curves']}`, method `{record['method']}` "
             f"({record['seeds']} seeds); stacked {record['stacked_run_steps_per_s']:.1f} and plain "
             f"{record['plain_run_steps_per_s']:.1f} run-steps/s ({record['rates']}).", "",
             "| target (mean of the seeds) | on the curve | stacked, one stack | plain loop, same steps | "
             f"plain loop, {record['reference_steps_per_seed']:,} steps per seed |",
             "| --- | --- | --- | --- | --- |"]
    for t in record["targets"]:
        target = t["target"]
        name = f"{target['name']}: >= {target['modes_3sigma']:g} modes, >= {100 * target['hq_fraction']:.0f} % HQ"
        if not t["reached"]:  # the curve's last step and its time: lower bounds
            lines.append(f"| {name} | not reached by step {t['step']:,} | > {t['seconds'] / 60:.1f} min | "
                         f"> {t['plain_seconds_same_steps'] / 60:.1f} min | - |")
            continue
        speedup = t["speedup_vs_published_schedule"]  # only for the target PacGAN's schedule reaches
        published = "-" if speedup is None else f"{t['published_schedule_seconds'] / 60:.0f} min (x{speedup:.1f})"
        lines.append(f"| {name} | step {t['step']:,} | {t['seconds'] / 60:.1f} min | "
                     f"{t['plain_seconds_same_steps'] / 60:.1f} min (x{t['speedup_same_steps']:.2f}) | {published} |")
    return "\n".join(lines) + "\n"


def conv_stack(record: dict[str, Any], source: str) -> str:
    single = record["single_engine"]
    share = ", ".join(f"{k} {100 * v:.0f} %" for k, v in single["share"].items())
    lines = [f"`benchmarks/results/{source}.json`: {record['processor']}, torch {record['torch']}, batch "
             f"{record['batch']}; the single engine's step on {record['threads']} threads takes "
             f"{1000 * single['step_seconds']:.1f} ms ({share}).", "",
             "| K | best stacked convolution form, x K separate calls | estimated stack, x single engine | "
             "K runs side by side, worker threads | K runs side by side, processes | single engine, 1 thread |",
             "| --- | --- | --- | --- | --- | --- |"]
    sides = {s["members"]: s for s in record["side_by_side"]}
    for stack in record["stacks"]:
        k = stack["members"]
        side = sides.get(k)
        cells = ["-", "-", "-"]
        if side is not None:
            ratio, spread = side["x_single_engine_threads"], side["x_range"]
            keys = (f"{k} runs as {side['threads']} worker threads x 1 thread",
                    f"{k} runs as {side['threads']} processes x 1 thread", "single engine, 1 thread")
            cells = [f"x{ratio[key]:.2f} ({_range(spread[key])})" for key in keys]
        lines.append(f"| {k} | x{stack['best_form_x_separate']:.2f} | x{stack['estimate_x_single']:.2f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: a block's name -> the table drawn from ``benchmarks/results/NAME.json`` (told its record's name)
TABLES: dict[str, Callable[[dict[str, Any], str], str]] = {
    "train_speed": train_speed, "cores": cores, "conv_stack": conv_stack, "time_to_quality": time_to_quality,
    "time_to_quality_tuned_10k": time_to_quality}


def rendered(text: str) -> str:
    """``text`` with every generated block written from its record."""
    def block(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"docs/speed.md names an unknown table {name!r}; known: {', '.join(TABLES)}")
        record = json.loads((RESULTS / f"{name}.json").read_text())
        return match.group(1) + TABLES[name](record, name) + match.group(4)

    return BLOCK.sub(block, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated block is stale; write nothing")
    args = parser.parse_args()
    text = DOC.read_text()
    new = rendered(text)
    if args.check:
        if new != text:
            print("docs/speed.md: a generated table differs from its record; run python benchmarks/tables.py")
            sys.exit(1)
        return
    DOC.write_text(new)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
