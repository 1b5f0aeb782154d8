"""The engine: one run folder and checkpoint format, the training loops (one run, or K seeds stacked as one model), the shared
discriminator chain, per-member Adam, weight averaging and compile."""
