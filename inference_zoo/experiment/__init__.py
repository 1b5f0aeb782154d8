"""Experiments: plan a grid of runs (compare, studies), train its cells (in process, in shards, or as scheduler jobs), evaluate them."""
