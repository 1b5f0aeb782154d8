"""Numbers are written once: every "mean ± s.e." the README and the docs quote is a row of a
published summary (figures/*/summary.csv, at the quoted digits, as a number or a percentage) or a
published paper's number kept in the code beside its source (``studies/published.py`` and the
studies' ``PUBLISHED`` rows). A re-published study that moves a number fails here until the text
quoting it is updated."""
from __future__ import annotations

import ast
import csv
import functools
import io
import json
import math
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "figures" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
QUOTE = re.compile(r"(?<![\d.])(-?\d[\d,]*(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)")  # a mean may be negative (KID)


def published_summaries() -> list[tuple[float, float]]:
    pairs = []
    for path in sorted(ROOT.glob("figures/*/summary.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                se = float(row["se"]) if row["se"] not in ("", "nan") else math.nan
                pairs.append((float(row["mean"]), se))
    return pairs


def papers_numbers() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "inference_zoo" / "studies").glob("*.py")))


def matches(mean_text: str, se_text: str, pairs: list[tuple[float, float]]) -> bool:
    digits = [len(t.split(".")[1]) if "." in t else 0 for t in (mean_text, se_text)]
    mean, se = float(mean_text.replace(",", "")), float(se_text)
    return any(round(m * scale, digits[0]) == mean and not math.isnan(s) and round(s * scale, digits[1]) == se
               for m, s in pairs for scale in (1.0, 100.0))


def test_the_check_tells_a_published_quote_from_a_retyped_one():
    pairs = [(0.9318779484298754, 0.21457829156875366), (0.788, 0.0381)]
    assert matches("0.93", "0.21", pairs) and matches("78.8", "3.8", pairs) and matches("0.9", "0.2", pairs)
    assert not matches("0.93", "0.22", pairs) and not matches("78.9", "3.8", pairs)
    quoted = QUOTE.findall("KID -16.1 ± 18.0, steps 2-3.5 ± 0.1")
    assert quoted == [("-16.1", "18.0"), ("3.5", "0.1")]
    assert matches("-16.1", "18.0", [(-16.13, 17.97)]) and not matches("16.1", "18.0", [(-16.13, 17.97)])


def test_every_mean_and_standard_error_the_docs_quote_is_a_published_row():
    pairs, papers = published_summaries(), papers_numbers()
    quoted, unbacked = 0, []
    for page in PAGES:
        text = page.read_text()
        for quote in QUOTE.finditer(text.replace("\n", " ")):  # a quote may wrap onto the next line
            mean, se = quote.groups()
            quoted += 1
            if f"{mean} ± {se}" not in papers and not matches(mean, se, pairs):
                line = text.count("\n", 0, quote.start()) + 1
                unbacked.append(f"{page.relative_to(ROOT)}:{line}: {mean} ± {se}")
    assert quoted > 100  # the pages do quote the studies
    assert not unbacked, "quoted but in no published summary (re-published? update the text): " + "; ".join(unbacked)


def test_the_speed_tables_are_written_from_the_benchmark_records():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (ROOT / "docs" / "speed.md").read_text().count("<!-- generated: ") >= 2


UNIT = (r"(?:%|x\b|×|ms\b|s\b|min\b|h\b|hours?\b|minutes?\b|seconds?\b|times\b|run-steps/s|trials/hour|GB|MB|GFLOP|"
        r"modes\b)")
# A measured number: a decimal, or a number with a unit of time, size or speed, a share, a ratio or
# a count of modes.
MEASURED = re.compile(rf"(?<![\w.\-/#:^])(x?)(\d[\d,]*\.\d+(?:e-?\d+)?|\d[\d,]*(?=\s?{UNIT}))")
# What is not a measurement though it looks like one: references, versions, inline code, links, and
# quotes of a mean and its standard error (checked above).
NOT_MEASURED = re.compile(r"`[^`]*`|\]\([^)]*\)|arXiv:\d+\.\d+|sections? \d+(?:\.\d+)*|SLURM \d+\.\d+|"
                          r"torch \d+\.\d+\.\d+\S*|Python \d+\.\d+|(?<![\d.])\d[\d,]*(?:\.\d+)?\s*±\s*\d+(?:\.\d+)?")
# Where a paragraph's numbers come from: the published folders and benchmark records it names.
SOURCE = re.compile(r"figures/([\w\-]+)|benchmarks/(?:results/)?(\w+)\.(?:json|py)")
# The seeds a paragraph names, whose rows it may quote one by one ("seed 0", "seeds 1 and 3").
SEEDS = re.compile(r"\bseeds? (\d+(?:(?:, | and | or )\d+)*)", re.I)


def record_values(paths: tuple[Path, ...], seeds: frozenset[int]) -> set[float]:
    """What the records say: a benchmark record's numbers; a published folder's summary (mean and
    s.e. per cell), its JSON records and tuning histories, the tables it writes, each cell's range
    over seeds (smallest and largest), its mean curves, and the rows of the ``seeds`` the text names."""
    values: set[float] = set()

    def add(value) -> None:
        try:
            number = float(str(value).replace(",", ""))
        except ValueError:
            return
        if math.isfinite(number):
            values.add(number)

    def walk(item) -> None:
        if isinstance(item, dict):
            for v in item.values():
                walk(v)
        elif isinstance(item, list):
            for v in item:
                walk(v)
        elif not isinstance(item, bool):
            add(item)

    for path in paths:
        if path.suffix == ".json":
            walk(json.loads(path.read_text()))
        elif path.name == "results.csv":
            cells: dict[tuple, list[float]] = {}
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    value = float(row["value"]) if row["value"] not in ("", "nan") else math.nan
                    cells.setdefault((row["dataset"], row["method"], row["metric"]), []).append(value)
                    if int(row["seed"]) in seeds:
                        add(value)
            for cell in cells.values():
                finite = [v for v in cell if math.isfinite(v)]
                if finite:
                    add(min(finite))
                    add(max(finite))
        elif path.name == "curves.csv":  # the mean curve over seeds
            points: dict[tuple, list[float]] = {}
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    key = (row["dataset"], row["method"], row["phase"], row["step"], row["metric"])
                    points.setdefault(key, []).append(float(row["value"]) if row["value"] else math.nan)
            for point in points.values():
                add(sum(point) / len(point))
        elif path.suffix == ".csv":
            with open(path, newline="") as f:
                for row in csv.reader(f):
                    for cell in row:
                        add(cell)
        else:
            for token in re.findall(r"\d[\d,]*(?:\.\d+)?", path.read_text()):
                add(token)
    return values


def values_named_in(text: str) -> set[float]:
    """The numbers of the published folders and benchmark records ``text`` names."""
    paths: list[Path] = []
    for folder, bench in SOURCE.findall(text):
        if folder:
            paths += [p for p in sorted((ROOT / "figures" / folder).rglob("*")) if p.suffix in (".json", ".md")
                      or p.name in ("summary.csv", "results.csv", "curves.csv", "trials.csv")]
        else:
            paths += sorted((ROOT / "benchmarks" / "results").glob(f"{bench}*.json"))
    seeds = {int(n) for names in SEEDS.findall(text) for n in re.findall(r"\d+", names)}
    return _values(tuple(dict.fromkeys(paths)), frozenset(seeds))


@functools.lru_cache(maxsize=None)
def _values(paths: tuple[Path, ...], seeds: frozenset[int]) -> set[float]:
    return record_values(paths, seeds)


def code_settings() -> set[float]:
    """The numbers the package is written with: defaults, presets, search spaces, options."""
    values = set()
    for path in sorted((ROOT / "inference_zoo").rglob("*.py")):
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.NUMBER and not token.string.endswith("j"):
                values.add(float(ast.literal_eval(token.string)))
    return values


def matches_a_record(text: str, values: set[float]) -> bool:
    mantissa, _, exponent = text.replace(",", "").partition("e")
    digits = (len(mantissa.split(".")[1]) if "." in mantissa else 0) - int(exponent or 0)
    number = float(text.replace(",", ""))
    half = 0.5 * 10 ** -digits + 1e-9  # what rounds to the quoted digits, a half either way
    return any(abs(v * scale - number) <= half for v in values for scale in (1.0, 100.0))


def code_comment(line: str) -> str:
    """A line of fenced code as the check reads it: its comment only (what it says the command does)."""
    code, mark, comment = line.partition("  # ")
    return " " * (len(code) + len(mark)) + comment if mark else ""


def unchecked_numbers(page_text: str, settings: set[float], papers: str, folder_headings: bool = False) -> list[str]:
    """The measured numbers of a page that no record named in their paragraph, or in the paragraph
    before it under the same heading, holds (at the quoted digits, as a number or a percentage),
    and that are not a published paper's number; a bare decimal may instead be a number the code is
    written with (a setting). Fenced code but its comments, and the tables written from the
    records (``<!-- generated: -->``), are left out. ``folder_headings``: a heading "## NAME/" is about
    ``figures/NAME`` (figures/README.md's sections), a source for its whole section, and so is
    a folder named as `NAME/` in a paragraph."""
    text = re.sub(r"```.*?```", lambda m: "\n".join(code_comment(line) for line in m.group(0).split("\n")), page_text,
                  flags=re.S)
    text = re.sub(r"<!-- generated: .*?<!-- end generated -->", lambda m: "\n" * m.group(0).count("\n"), text,
                  flags=re.S)
    unchecked, line, before, heading = [], 1, "", ""
    for paragraph in re.split(r"(\n\s*\n)", text):
        if paragraph.startswith("#"):  # a heading: what comes after it starts afresh
            title, newline, paragraph = paragraph.partition("\n")
            before, line = "", line + len(newline)
            folder = re.match(r"#+ `?([\w\-]+)/", title)
            heading = f"figures/{folder.group(1)}" if folder_headings and folder else ""
        if not paragraph.strip():
            line += paragraph.count("\n")
            continue
        named = before + "\n" + paragraph
        if folder_headings:  # figures/README.md names its folders as `NAME/`
            named = re.sub(r"`([\w\-]+)/`", lambda m: f"figures/{m.group(1)}", named)
        values = values_named_in(heading + "\n" + named)
        scan = NOT_MEASURED.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), paragraph)  # lines kept
        for match in MEASURED.finditer(scan):
            ratio, number = match.groups()
            bare = not ratio and not re.match(rf"\s?{UNIT}", scan[match.end():])
            if matches_a_record(number, values) or re.search(rf"(?<![\d.]){re.escape(number)}(?![\d.e])", papers) or \
                    (bare and float(number.replace(",", "")) in settings):
                continue
            unchecked.append(f"line {line + scan[:match.start()].count(chr(10))}: {match.group(0)}")
        line += paragraph.count("\n")
        before = paragraph
    return unchecked


def test_the_number_check_tells_a_measurement_from_a_setting_and_a_record_from_a_retyped_one():
    settings, papers = {0.5, 0.375}, "PUBLISHED = 19.14"
    with_source = ("## A\nSee `figures/tuned_10k/`: 21.2 modes, 35.4 % HQ, 8.86 trials/hour, in 3,249 s; "
                   "beta1 0.5, lr 2.8e-4.\n")
    assert unchecked_numbers(with_source, settings, papers) == []
    assert unchecked_numbers("## B\n21.2 modes, 35.4 % HQ; 19.14 % in the paper.\n", settings, papers) == \
        ["line 2: 21.2", "line 2: 35.4"]  # the same numbers in a paragraph that names no record
    assert unchecked_numbers("## E\nSeed 3 ends at 23 modes after 5 seeds.\n", settings, papers) == ["line 2: 23"]
    # a record named in the paragraph before holds, one named two paragraphs before does not
    assert unchecked_numbers(with_source + "\nThen 21.2 modes.\n\nAnd 21.2 modes.\n\n# D\n\n1.5 s\n", settings,
                             papers) == ["line 6: 21.2", "line 10: 1.5"]
    assert unchecked_numbers("## A\nfigures/tuned_10k: 35.5 % HQ and 0.385 % more, lr 2.9e-4\n", settings, papers) == \
        ["line 2: 35.5", "line 2: 0.385", "line 2: 2.9e-4"]  # retyped wrongly; a share is not a setting
    assert unchecked_numbers("## C\n`--lr 2.5` (arXiv:1606.00704, section 4.3), 3.1 ± 0.2\n", settings, papers) == []
    assert unchecked_numbers("```bash\nizoo compare --lr 2.5 --steps 300   # 4.5 s\n```\n", settings, papers) == \
        ["line 2: 4.5"]  # a command's settings are not measurements; what its comment says it took is


def test_every_measured_number_the_readme_and_the_docs_quote_is_checked_against_a_record():
    settings, papers = code_settings(), papers_numbers()
    unchecked = [f"{page.relative_to(ROOT)} {where}" for page in PAGES
                 for where in unchecked_numbers(page.read_text(), settings, papers, page.parent.name == "figures")]
    assert not unchecked, ("measured numbers that no record named in their paragraph (or the one before) holds: name "
                           "the figures/ folder or the benchmarks/results record they come from, or write them from "
                           "it:\n" + "\n".join(unchecked))
