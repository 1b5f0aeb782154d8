"""Published mode-coverage numbers on the 25-Gaussian grid with the 3-sigma metric (anchors s.2).

These depend heavily on architecture and schedule; we print them beside ours, never as ours.
"""
from __future__ import annotations

# (source, method, modes /25, HQ %, reverse KL); None where the paper gives no number.
THREE_SIGMA_GRID = [
    ("VEEGAN (Srivastava et al. 2017, Tab. 1; 5 runs)", "GAN", "3.3", "0.5", None),
    ("VEEGAN", "ALI", "15.8", "1.6", None),
    ("VEEGAN", "Unrolled GAN", "23.6", "16", None),
    ("VEEGAN", "VEEGAN", "24.6", "40", None),
    ("PacGAN (Lin et al. 2018, Tab. 1; 10 trials, ± s.e.)", "GAN", "17.3 ± 0.8", "94.8 ± 0.7", "0.70 ± 0.07"),
    ("PacGAN", "ALI", "24.1 ± 0.4", "95.7 ± 0.6", "0.14 ± 0.03"),
    ("PacGAN", "PacGAN4", "24.8 ± 0.2", "93.6 ± 0.6", "0.04 ± 0.01"),
]

# ALI paper, responsibility metric, 10 runs each: mean ± std (min, max).
RESPONSIBILITY_GRID = [
    ("ALI paper (Dumoulin et al. 2017; 10 runs, ± std)", "ALI", "13.4 ± 5.8 (8-25)"),
    ("ALI paper", "GAN", "10.4 ± 9.2 (1-22)"),
]
