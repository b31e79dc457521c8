"""Semantic Palette's palette estimator: a Gaussian mixture over the class-proportion vectors of the training layouts.

A palette is a class-proportion vector: C non-negative shares of the image, one per class, summing to 1. To draw
palettes like those of real scenes, the official code (`tools/cond_estimator.py`) fits scikit-learn's
`GaussianMixture` with full covariances to the palettes of the training layouts, tries 1 to 30 components and keeps
the one with the lowest AIC; a draw from the mixture is clipped to [0, 1] and renormalised to sum 1 (its `approx`
projection). `PaletteEstimator` does the same, with these departures:

- `reg_covar` is `REG_COVAR` = 1e-4 (a standard deviation of 1% of the image) instead of scikit-learn's 1e-6. The
  covariance of a palette is singular (its entries sum to 1, so each covariance row sums to 0), and the synthetic
  city never shows some of the 19 classes, whose variance is then the regulariser alone; a larger one keeps the log
  densities of the AIC and of `complete` from being dominated by directions of near-zero variance.
- Every fit uses `n_init=1` and `random_state=seed`, and the model of the AIC sweep itself is kept (the official code
  refits the chosen number of components with several initialisations), so the same data and seed give the same
  estimator.
- A draw whose entries are all <= 0 cannot be renormalised (the official division gives NaN): it is replaced by the
  mean of the component it was drawn from.
- `complete` is not in the official code, which samples whole palettes only: it fills in the classes a user did not
  name, from the Gaussian conditional of the mixture given the named ones (component posteriors from each
  component's marginal density of the named values, conditional means `mu_u + S_uo S_oo^-1 (x_o - mu_o)`). On a
  covariance fitted to palettes the conditional mean of the unnamed classes already sums to the remaining mass
  `1 - sum(named)`; the regulariser and the clipping to >= 0 make that approximate, so they are rescaled to it.
- The mixture is stored as three float64 tensors (`state_dict`) rather than a pickled scikit-learn object, so that it
  travels in checkpoints read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import torch
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from scenes.errors import InputError

__all__ = ["MAX_COMPONENTS", "REG_COVAR", "SUM_TOLERANCE", "PaletteEstimator", "aic_by_components"]

MAX_COMPONENTS: Final = 30
REG_COVAR: Final = 1e-4
# How far from 1 the sum of a palette may be: training palettes, full requests to `complete`, component means.
SUM_TOLERANCE: Final = 1e-3

_REQUEST_SUM_SLACK: Final = 1e-6
_WEIGHT_SUM_TOLERANCE: Final = 1e-6
_STATE_KEYS: Final = ("weights", "means", "covariances")


def _check_proportions(proportions: np.ndarray) -> np.ndarray:
    """`proportions` as a float64 `(N, C)` array, or `InputError` naming the first row that is not a palette."""
    array = np.asarray(proportions, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 1:
        raise InputError(f"proportions: expected an (N, C) array of class proportions, got shape {array.shape}")
    finite = np.isfinite(array).all(axis=1)
    negative = (array < 0).any(axis=1)
    sums = np.where(finite, array.sum(axis=1), np.nan)
    off_sum = ~(np.abs(sums - 1.0) <= SUM_TOLERANCE)
    bad = np.flatnonzero(~finite | negative | off_sum)
    if len(bad):
        row = int(bad[0])
        if not finite[row]:
            problem = "has NaN or inf"
        elif negative[row]:
            problem = f"has a negative entry ({array[row].min():g})"
        else:
            problem = f"sums to {sums[row]:.6g}, not 1 (tolerance {SUM_TOLERANCE:g})"
        raise InputError(f"proportions: row {row} {problem}")
    return array


def _mixture(proportions: np.ndarray, n_components: int, seed: int) -> GaussianMixture:
    return GaussianMixture(n_components, covariance_type="full", reg_covar=REG_COVAR, n_init=1, random_state=seed).fit(proportions)


def _component_range(num_rows: int, max_components: int) -> range:
    if num_rows < 2:
        raise InputError(f"proportions: fitting the palette estimator needs at least 2 palettes, got {num_rows}")
    if max_components < 1:
        raise InputError(f"max_components must be >= 1, got {max_components}")
    return range(1, min(max_components, num_rows) + 1)


def aic_by_components(proportions: np.ndarray, max_components: int = MAX_COMPONENTS, seed: int = 0) -> dict[int, float]:
    """The AIC of the mixture fitted with K components, for K = 1 .. min(max_components, N), on `(N, C)` palettes."""
    data = _check_proportions(proportions)
    return {k: float(_mixture(data, k, seed).aic(data)) for k in _component_range(len(data), max_components)}


def _cholesky(covariance: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.asarray(cholesky(covariance, lower=True))
    except np.linalg.LinAlgError:
        raise ValueError(f"{what} is not positive definite") from None


def _gaussian_logpdf(points: np.ndarray, mean: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Log density of `N(mean, L L^T)` at the rows of `points`, from the Cholesky factor `lower`."""
    whitened = solve_triangular(lower, (points - mean).T, lower=True)
    log_det = 2.0 * np.log(np.diag(lower)).sum()
    return -0.5 * (np.square(whitened).sum(axis=0) + log_det + len(mean) * math.log(2.0 * math.pi))


def _as_array(estimator: PaletteEstimator, name: str, shape: tuple[int, ...], dims: str) -> np.ndarray:
    array = np.array(getattr(estimator, name), dtype=np.float64, copy=True)
    if array.shape != shape:
        raise ValueError(f"PaletteEstimator.{name}: expected shape {dims} = {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"PaletteEstimator.{name}: contains NaN or inf")
    array.flags.writeable = False
    object.__setattr__(estimator, name, array)
    return array


@dataclass(frozen=True, eq=False)
class PaletteEstimator:
    """A mixture of K full-covariance Gaussians over C-class palettes: `weights (K,)`, `means (K, C)`, `covariances (K, C, C)`.

    Each mean is a palette (>= 0, summing to 1 within `SUM_TOLERANCE`), as the mean of any set of palettes is.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(self.class_names)
        if not names or not all(isinstance(name, str) for name in names):
            raise ValueError(f"PaletteEstimator.class_names: expected a non-empty sequence of strings, got {self.class_names!r}")
        object.__setattr__(self, "class_names", names)
        num_components = len(self.weights) if np.ndim(self.weights) == 1 else 0
        if num_components < 1:
            raise ValueError(f"PaletteEstimator.weights: expected shape (K,) with K >= 1, got {np.shape(self.weights)}")
        num_classes = len(names)
        weights = _as_array(self, "weights", (num_components,), "(K,)")
        means = _as_array(self, "means", (num_components, num_classes), "(K, C)")
        covariances = _as_array(self, "covariances", (num_components, num_classes, num_classes), "(K, C, C)")
        if (weights < 0).any() or abs(weights.sum() - 1.0) > _WEIGHT_SUM_TOLERANCE:
            raise ValueError(f"PaletteEstimator.weights: expected non-negative weights summing to 1, got {weights.tolist()}")
        if (means < 0).any() or (np.abs(means.sum(axis=1) - 1.0) > SUM_TOLERANCE).any():
            raise ValueError("PaletteEstimator.means: every component mean must be a palette (entries >= 0, summing to 1)")
        if not np.allclose(covariances, covariances.transpose(0, 2, 1), rtol=1e-8, atol=1e-12):
            raise ValueError("PaletteEstimator.covariances: the covariance matrices are not symmetric")

    @property
    def num_components(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def fit(cls, proportions: np.ndarray, class_names: Sequence[str], *, max_components: int = MAX_COMPONENTS, seed: int = 0) -> PaletteEstimator:
        """The lowest-AIC mixture of 1 .. min(max_components, N) components fitted to `(N, C)` palettes.

        Ties go to fewer components. Raises `InputError` when a row is not a palette (finite, >= 0, summing to 1 within
        `SUM_TOLERANCE`), when `class_names` does not have C names, or when there are fewer than 2 rows.
        """
        data = _check_proportions(proportions)
        if len(class_names) != data.shape[1]:
            raise InputError(f"proportions: {data.shape[1]} classes per row, but {len(class_names)} class names")
        aic = aic_by_components(data, max_components, seed)
        best = min(aic, key=lambda k: (aic[k], k))
        mixture = _mixture(data, best, seed)
        return cls(mixture.weights_, mixture.means_, mixture.covariances_, tuple(class_names))

    def log_likelihood(self, proportions: np.ndarray) -> np.ndarray:
        """The mixture's log density at each row of `(N, C)` proportions, float64 `(N,)`."""
        points = np.asarray(proportions, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != self.num_classes:
            raise InputError(f"proportions: expected shape (N, {self.num_classes}), got {points.shape}")
        per_component = np.stack(
            [
                _gaussian_logpdf(points, mean, _cholesky(covariance, f"PaletteEstimator.covariances[{k}]"))
                for k, (mean, covariance) in enumerate(zip(self.means, self.covariances, strict=True))
            ],
            axis=1,
        )
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights)
        return np.asarray(logsumexp(per_component + log_weights, axis=1))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """`n` palettes drawn from the mixture, float32 `(n, C)`: each draw is clipped to >= 0 and renormalised to sum 1.

        A draw with no positive entry is replaced by the mean of the component it was drawn from.
        """
        if n < 0:
            raise InputError(f"n must be >= 0, got {n}")
        components = rng.choice(self.num_components, size=n, p=self.weights)
        palettes = np.zeros((n, self.num_classes))
        for k in np.unique(components):
            rows = np.flatnonzero(components == k)
            draws = np.clip(rng.multivariate_normal(self.means[k], self.covariances[k], size=len(rows)), 0.0, None)
            draws[draws.sum(axis=1) <= 0] = self.means[k]
            palettes[rows] = draws / draws.sum(axis=1, keepdims=True)
        return palettes.astype(np.float32)

    def complete(self, partial: Mapping[int, float], rng: np.random.Generator | None = None) -> np.ndarray:
        """A full float64 `(C,)` palette whose entries at the keys of `partial` (class index -> proportion) are exactly its values.

        The other classes share the remaining mass `1 - sum(partial)` as the mixture conditioned on the named values
        predicts: the conditional mean of the mixture when `rng` is None, else a draw (a component picked by its
        posterior weight, then its conditional Gaussian). They are clipped to >= 0 and rescaled to sum to the
        remaining mass; if none is left positive, the mass is spread in proportion to their unconditional mixture mean
        (uniformly where that is 0 too). With every class named, the request is returned (it must sum to 1 within
        `SUM_TOLERANCE`); with none, a palette of the unconditional mixture.

        Raises `InputError` for an index outside [0, C), a proportion outside [0, 1], or named proportions summing to
        more than 1.
        """
        observed, values = self._check_request(partial)
        requested = float(values.sum())
        palette = np.zeros(self.num_classes)
        palette[observed] = values
        if len(observed) == self.num_classes:
            if abs(requested - 1.0) > SUM_TOLERANCE:
                raise InputError(f"palette request: every class is named and the proportions sum to {requested:.6g}, not 1")
            return palette
        unobserved = np.setdiff1d(np.arange(self.num_classes), observed)
        remaining = max(1.0 - requested, 0.0)
        if remaining == 0.0:
            return palette
        posterior, conditional_means, conditional_covariances = self._conditional(observed, unobserved, values)
        if rng is None:
            fill = posterior @ conditional_means
        else:
            k = int(rng.choice(self.num_components, p=posterior))
            fill = rng.multivariate_normal(conditional_means[k], conditional_covariances[k])
        fill = np.clip(fill, 0.0, None)
        if fill.sum() <= 0:
            fill = self.weights @ self.means[:, unobserved]
            if fill.sum() <= 0:
                fill = np.ones(len(unobserved))
        palette[unobserved] = fill * (remaining / fill.sum())
        return palette

    def _check_request(self, partial: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
        """The requested class indices, sorted, and their proportions; `InputError` for an invalid request."""
        for index, value in partial.items():
            if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < self.num_classes:
                raise InputError(f"palette request: class index {index!r} is not in [0, {self.num_classes})")
            if not 0.0 <= float(value) <= 1.0:
                raise InputError(f"palette request: class {index} ({self.class_names[index]}) has proportion {value!r}, outside [0, 1]")
        observed = np.array(sorted(int(index) for index in partial), dtype=np.int64)
        values = np.array([float(partial[int(index)]) for index in observed], dtype=np.float64)
        if values.sum() > 1.0 + _REQUEST_SUM_SLACK:
            raise InputError(f"palette request: the named proportions sum to {values.sum():.6g}, more than 1")
        return observed, values

    def _conditional(self, observed: np.ndarray, unobserved: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior component weights `(K,)`, conditional means `(K, U)` and covariances `(K, U, U)` of the unobserved classes."""
        if not len(observed):
            return self.weights, self.means, self.covariances
        log_posterior = np.zeros(self.num_components)
        means = np.zeros((self.num_components, len(unobserved)))
        covariances = np.zeros((self.num_components, len(unobserved), len(unobserved)))
        for k, (mean, covariance) in enumerate(zip(self.means, self.covariances, strict=True)):
            lower = _cholesky(covariance[np.ix_(observed, observed)], f"PaletteEstimator.covariances[{k}] restricted to the requested classes")
            cross = covariance[np.ix_(unobserved, observed)]
            log_posterior[k] = _gaussian_logpdf(values[None], mean[observed], lower)[0]
            means[k] = mean[unobserved] + cross @ cho_solve((lower, True), values - mean[observed])
            covariances[k] = covariance[np.ix_(unobserved, unobserved)] - cross @ cho_solve((lower, True), cross.T)
        with np.errstate(divide="ignore"):
            log_posterior += np.log(self.weights)
        return np.exp(log_posterior - logsumexp(log_posterior)), means, covariances

    def state_dict(self) -> dict[str, torch.Tensor]:
        """`weights`, `means` and `covariances` as float64 tensors, for a `torch.save` checkpoint read with `weights_only=True`."""
        return {key: torch.from_numpy(np.array(getattr(self, key), dtype=np.float64)) for key in _STATE_KEYS}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor], class_names: Sequence[str]) -> PaletteEstimator:
        """The estimator stored by `state_dict`; `ValueError` naming the key that is missing, unexpected or malformed."""
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"palette estimator state: missing key(s) {', '.join(missing)}")
        unexpected = sorted(str(key) for key in state if key not in _STATE_KEYS)
        if unexpected:
            raise ValueError(f"palette estimator state: unexpected key(s) {', '.join(unexpected)}")
        arrays = {}
        for key in _STATE_KEYS:
            tensor = state[key]
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                raise ValueError(f"palette estimator state: {key} must be a floating-point tensor, got {type(tensor).__name__}")
            arrays[key] = tensor.detach().cpu().to(torch.float64).numpy()
        return cls(arrays["weights"], arrays["means"], arrays["covariances"], tuple(class_names))
