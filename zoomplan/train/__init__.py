"""Training: datasets -> classifiers -> policy (Pt, Ft-1, Ft-2) -> one checkpoint with its card."""
