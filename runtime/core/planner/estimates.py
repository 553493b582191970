"""What the planner believes about one sample of a model on a subtask, updated online.

- success: a Beta posterior per (subtask, model). The prior mean p0 with strength n0 is
  Beta(p0 n0, (1 - p0) n0); each verified sample adds one to alpha (passed) or beta.
- output length: an empirical distribution with a prior. The prior is a log-normal
  (median, sigma) worth `prior_weight` samples; each observed length is worth one. The
  planner reads it as Q equally likely quantile points, so a draw is one table lookup:

      lengths[s, m, :]   Q ascending token counts, each with probability 1/Q

  The told median itself may be off by a log-normal factor (`median_sigma`); its
  posterior spread, 1 / sqrt(1 / median_sigma^2 + observations / sigma^2), scales
  each rollout's lengths by one draw, as a posterior draw of p does for success.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

QUANTILES = 32
_PROBS = (np.arange(QUANTILES) + 0.5) / QUANTILES
_Z = np.array([NormalDist().inv_cdf(float(q)) for q in _PROBS])


def max_of_k_weights(ks: np.ndarray) -> np.ndarray:
    """Weights w (len(ks), Q) with E[max of k iid draws] = sum_i w[k, i] q_i over
    ascending quantile points q: the probability that the maximum falls in the i-th
    1/Q slice."""
    edges = np.arange(QUANTILES + 1) / QUANTILES
    return np.diff(edges[None, :] ** np.asarray(ks)[:, None], axis=1)


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(40)
_GH_W = _GH_W / _GH_W.sum()


def logit_normal_beta(p: float, sigma: float, max_strength: float = 400.0) -> tuple[float, float]:
    """(mean, strength) of the Beta matching the moments of sigmoid(logit(p) + sigma Z),
    Z standard normal: what a success rate told as `p`, off by `sigma` on the logit
    scale, is worth. Near 0 or 1 the same logit error is a small error in p, so the
    prior is worth more samples than in the middle (sigma 0.8: about 7 at p = 0.5,
    about 14 at p = 0.9)."""
    if not 0 < p < 1 or sigma < 0:
        raise ValueError(f"need 0 < p < 1 and sigma >= 0, got p={p}, sigma={sigma}")
    if sigma == 0:
        return p, max_strength
    x = 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + sigma * _GH_X)))
    mean = float(_GH_W @ x)
    var = float(_GH_W @ (x - mean) ** 2)
    return mean, float(min(max_strength, max(1.0, mean * (1 - mean) / var - 1.0)))


class SuccessEstimates:
    """Beta posteriors of one sample's success, one per (subtask, model): arrays of
    shape (S, M). `update` mutates; `mean` and `sample` read."""

    def __init__(self, prior_mean: np.ndarray, strength: np.ndarray) -> None:
        if np.any((prior_mean <= 0) | (prior_mean >= 1)):
            raise ValueError(f"prior success means must be in (0, 1), got {prior_mean}")
        if np.any(strength <= 0):
            raise ValueError(f"prior strengths must be positive, got {strength}")
        self.alpha = np.asarray(prior_mean * strength, dtype=float)
        self.beta = np.asarray((1.0 - prior_mean) * strength, dtype=float)

    def update(self, s: int, m: int, successes: int, failures: int) -> None:
        if successes < 0 or failures < 0:
            raise ValueError(f"counts must be >= 0, got {successes} and {failures}")
        self.alpha[s, m] += successes
        self.beta[s, m] += failures

    def mean(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def sample(self, rng: np.random.Generator, rows: np.ndarray, n: int) -> np.ndarray:
        """n posterior draws for each model of each subtask in `rows`: (len(rows), M, n)."""
        a, b = self.alpha[rows, :, None], self.beta[rows, :, None]
        return rng.beta(a, b, size=(len(rows), a.shape[1], n))


@dataclass(slots=True)
class LengthEstimate:
    """Output length of one (subtask, model): a log-normal prior plus observations,
    clipped to [1, max_tokens]."""

    prior_median: float
    prior_sigma: float
    prior_weight: float
    max_tokens: int
    median_sigma: float = 0.0
    observed: list[int] = field(default_factory=list)

    def scale_sigma(self) -> float:
        """Posterior standard deviation of the log of the median's error."""
        if self.median_sigma <= 0:
            return 0.0
        precision = 1.0 / self.median_sigma**2 + len(self.observed) / self.prior_sigma**2
        return float(1.0 / np.sqrt(precision))

    def quantiles(self) -> np.ndarray:
        """Q ascending points of the mixture (prior weight `prior_weight`, each
        observation weight 1), each standing for probability 1/Q."""
        prior = self.prior_median * np.exp(self.prior_sigma * _Z)
        if not self.observed:
            return np.clip(prior, 1, self.max_tokens)
        values = np.concatenate([prior, np.asarray(self.observed, dtype=float)])
        weights = np.concatenate([np.full(QUANTILES, self.prior_weight / QUANTILES),
                                  np.ones(len(self.observed))])
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(weights[order])
        at = np.searchsorted(cum, _PROBS * cum[-1])
        return np.clip(values[order][np.minimum(at, len(values) - 1)], 1, self.max_tokens)


class LengthEstimates:
    """All (subtask, model) length estimates: their quantile table (S, M, Q) and the
    spread of their median's error (S, M)."""

    def __init__(self, estimates: list[list[LengthEstimate]]) -> None:
        self.estimates = estimates
        flat = [e for row in estimates for e in row]
        shape = (len(estimates), len(estimates[0]))
        if any(e.observed for e in flat):
            self.table = np.array([[e.quantiles() for e in row] for row in estimates])
        else:  # priors only: one array expression
            median = np.array([e.prior_median for e in flat])[:, None]
            sigma = np.array([e.prior_sigma for e in flat])[:, None]
            cap = np.array([e.max_tokens for e in flat])[:, None]
            self.table = np.clip(median * np.exp(sigma * _Z), 1, cap).reshape(*shape, -1)
        self.scale_sigma = np.array([e.scale_sigma() for e in flat]).reshape(shape)

    def update(self, s: int, m: int, lengths: list[int]) -> None:
        est = self.estimates[s][m]
        est.observed.extend(int(x) for x in lengths)
        self.table[s, m] = est.quantiles()
        self.scale_sigma[s, m] = est.scale_sigma()

    def mean(self) -> np.ndarray:
        return self.table.mean(axis=2)
