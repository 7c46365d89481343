"""Error-versus-discard curves: does a quality score find the comparisons that fail?

ISO/IEC 29794-1 (and NIST's FRVT quality track) judge a quality score by discarding the lowest-quality
fraction of genuine comparisons (a pair's quality is the lower of its two faces') and measuring the
false non-match rate of what is left, at a threshold fixed beforehand for a false-match rate.  A score
that predicts errors makes the curve fall; discarding at random leaves it flat on average.  The
partial area under the curve up to a discard limit summarises it (lower is better).
"""

import numpy as np

#: Discard fractions the curves are drawn at, and the limit of the partial area.
DISCARD_FRACTIONS = np.round(np.linspace(0.0, 0.3, 31), 4)
AREA_LIMIT = 0.2


def false_non_match_rates(genuine_scores, pair_quality, threshold, fractions=DISCARD_FRACTIONS):
    """FNMR (genuine scores below ``threshold``) after discarding each fraction of the genuine pairs with
    the lowest ``pair_quality`` (ties broken by pair order)."""
    scores = np.asarray(genuine_scores, np.float64)
    order = np.argsort(np.asarray(pair_quality, np.float64), kind="stable")
    rejected = (scores < threshold)[order]
    rates = []
    for fraction in fractions:
        kept = rejected[int(round(fraction * len(scores))):]
        rates.append(float(kept.mean()) if len(kept) else 0.0)
    return np.array(rates)


def random_discard(genuine_scores, threshold, fractions=DISCARD_FRACTIONS, repeats=200, seed=0):
    """``(mean, 5th percentile, 95th percentile)`` FNMR per fraction when pairs are discarded at random."""
    rng = np.random.default_rng(seed)
    curves = np.array([false_non_match_rates(genuine_scores, rng.random(len(genuine_scores)), threshold, fractions)
                       for _ in range(repeats)])
    return curves.mean(axis=0), np.percentile(curves, 5, axis=0), np.percentile(curves, 95, axis=0)


def partial_area(rates, fractions=DISCARD_FRACTIONS, limit=AREA_LIMIT):
    """The area under an FNMR curve from no discard to ``limit`` (trapezoids)."""
    fractions, rates = np.asarray(fractions), np.asarray(rates)
    inside = fractions <= limit + 1e-12
    x, y = fractions[inside], rates[inside]
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
