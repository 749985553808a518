"""One entropy and one KL, in bits, for every module that reports them (report, audit, sample, benchmarks)."""

from __future__ import annotations

import numpy as np


def entropy_bits(weights) -> float:
    """Shannon entropy (bits) of counts or probabilities (normalised here; zeros ignored)."""
    c = np.asarray(list(weights), dtype=float)
    total = c.sum()
    if total <= 0:
        return 0.0
    p = c[c > 0] / total
    return float(-(p * np.log2(p)).sum())


def kl_bits(p, q) -> float:
    """KL(p ‖ q) in bits: p as counts or weights (normalised here), q as probabilities of the same
    values, taken as given (a target's probabilities over its whole list, of which p may see only a
    part); q must be > 0 where p is."""
    p = np.asarray(list(p), dtype=float)
    q = np.asarray(list(q), dtype=float)
    p = p / p.sum()
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / q[nz])).sum())


def normalized_entropy(weights, support: int) -> float:
    """Entropy divided by its maximum log2(support); 0 for a support of 0 or 1."""
    return entropy_bits(weights) / float(np.log2(support)) if support > 1 else 0.0
