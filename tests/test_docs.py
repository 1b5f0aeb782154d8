"""Numbers are written once: every "mean ± s.e." the README and the docs quote is a row of a
published summary (figures/*/summary.csv, at the quoted digits, as a number or a percentage) or a
published paper's number kept in the code beside its source (``studies/published.py`` and the
studies' ``PUBLISHED`` rows). A re-published study that moves a number fails here until the text
quoting it is updated."""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "figures" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
QUOTE = re.compile(r"(?<![\d.])(\d[\d,]*(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)")


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


def test_every_mean_and_standard_error_the_docs_quote_is_a_published_row():
    pairs, papers = published_summaries(), papers_numbers()
    quoted, unbacked = 0, []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            for mean, se in QUOTE.findall(line):
                quoted += 1
                if f"{mean} ± {se}" not in papers and not matches(mean, se, pairs):
                    unbacked.append(f"{page.relative_to(ROOT)}:{number}: {mean} ± {se}")
    assert quoted > 100  # the pages do quote the studies
    assert not unbacked, "quoted but in no published summary (re-published? update the text): " + "; ".join(unbacked)


def test_the_speed_tables_are_written_from_the_benchmark_records():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (ROOT / "docs" / "speed.md").read_text().count("<!-- generated: ") >= 2
