"""Evaluating a trained run: its final and curve-point metrics as tidy rows (``evaluate.py``), the
feature network image metrics are computed in (``feature_net.py``), FID for users who hold
Inception weights (``fid.py``), and the baselines semi-supervised ALI is judged against
(``label_baselines.py``)."""
