"""The toolkit from Python (a script here; the same lines work in a notebook).

    pip install -e ".[notebook]" && python examples/python_api.py

Trains ALI and the VAE on the 25-Gaussian grid for a short budget (about a minute on 2 CPU
cores), prints the summary table, then loads the trained ALI back from its run folder alone and
uses its encoder and decoder on new points.
"""
import numpy as np
import torch

import inference_zoo as izoo

res = izoo.compare(methods=["ali", "vae"], data="grid", seeds=2, steps=1000, out="runs/python_api", overwrite=True)
print(res)                                   # where, what, and the headline metrics' means
summary = res.summary
print(summary[summary.metric.isin(["modes_3sigma", "hq_fraction", "recon_mse"])].to_string(index=False))

ali = izoo.load_run("runs/python_api/runs/grid/ali/seed0")   # no training data needed
points = torch.tensor([[0.0, 0.0], [2.0, -2.0], [4.0, 4.0]])
with torch.no_grad():
    codes = ali.encode(points)               # z ~ q(z|x)
    back = ali.decode(codes)                 # G(E(x))
    fresh = ali.sample(5)                    # G(z), z ~ N(0, I)
print("x      ", points.tolist())
print("G(E(x))", [[round(v, 2) for v in row] for row in back.tolist()])
print("samples", [[round(v, 2) for v in row] for row in fresh.tolist()])
print("E(x) at noise 0 for one numpy point:", ali.encode(np.array([2.0, -2.0]), mean=True))
print("all rows:", izoo.read_results("runs/python_api").shape)
