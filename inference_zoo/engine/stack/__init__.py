"""The stacked engine: K runs of one strategy trained as one model (``engine.py``), its layers
(``layers.py``), the per-member matmuls (``matmul.py``) and Adam (``adam.py``) that keep each
member's bits its own, the discriminator's shared backward chain (``backward.py``), and a scan of
this machine's kernels (``kernel_forms.py``)."""
