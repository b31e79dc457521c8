"""The palette estimator: AIC selection and recovery of known clusters, simplex samples, Gaussian-conditional completion
checked against the closed form, errors, the weights-only state round trip and determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from scenegen.palette import PaletteEstimator, aic_by_components
from scenes.errors import InputError

NAMES: Final = ("road", "building", "vegetation", "sky", "train")
# Two well-separated palettes; the last class ("train") is never present, as some classes in the synthetic city.
CLUSTER_A: Final = np.array([0.6, 0.2, 0.1, 0.1, 0.0])
CLUSTER_B: Final = np.array([0.1, 0.1, 0.2, 0.6, 0.0])


def _cluster(mean: np.ndarray, n: int, rng: np.random.Generator, std: float = 0.02) -> np.ndarray:
    """`n` palettes around `mean`: Gaussian noise on the present classes, centred so that every row still sums to 1."""
    noise = rng.normal(0.0, std, (n, 4))
    noise -= noise.mean(axis=1, keepdims=True)
    palettes = np.tile(mean, (n, 1))
    palettes[:, :4] += noise
    return palettes


def _two_clusters(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([_cluster(CLUSTER_A, 150, rng), _cluster(CLUSTER_B, 150, rng)])


@pytest.fixture(scope="module")
def palettes() -> np.ndarray:
    return _two_clusters()


@pytest.fixture(scope="module")
def fitted(palettes: np.ndarray) -> PaletteEstimator:
    return PaletteEstimator.fit(palettes, NAMES, max_components=5, seed=0)


def _simplex_covariance(variances: list[float], scale: float) -> np.ndarray:
    """`scale * P diag(variances) P` with `P = I - 11^T / C`: a covariance whose rows sum to 0, as on palettes."""
    size = len(variances)
    centring = np.eye(size) - np.full((size, size), 1.0 / size)
    return scale * centring @ np.diag(variances) @ centring


def _gaussian_conditional(mean: np.ndarray, covariance: np.ndarray, observed: list[int], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the unobserved entries of `N(mean, covariance)` given the observed ones (closed form)."""
    unobserved = [i for i in range(len(mean)) if i not in observed]
    s_uo = covariance[np.ix_(unobserved, observed)]
    s_oo = covariance[np.ix_(observed, observed)]
    gain = np.linalg.solve(s_oo, s_uo.T).T
    conditional_mean = mean[unobserved] + gain @ (np.array(values) - mean[observed])
    conditional_covariance = covariance[np.ix_(unobserved, unobserved)] - gain @ s_uo.T
    return conditional_mean, conditional_covariance


def test_aic_prefers_two_components_and_fit_recovers_the_clusters(palettes: np.ndarray, fitted: PaletteEstimator) -> None:
    aic = aic_by_components(palettes, max_components=5, seed=0)
    assert sorted(aic) == [1, 2, 3, 4, 5]
    assert aic[2] < aic[1]
    assert fitted.num_components == min(aic, key=aic.__getitem__) >= 2
    assert fitted.class_names == NAMES
    assert fitted.weights.dtype == fitted.means.dtype == fitted.covariances.dtype == np.float64
    assert fitted.means.shape == (fitted.num_components, 5) and fitted.covariances.shape == (fitted.num_components, 5, 5)
    # Each true cluster mean is recovered by the component nearest to it, which carries about half of the weight.
    for truth in (CLUSTER_A, CLUSTER_B):
        nearest = int(np.argmin(np.abs(fitted.means - truth).max(axis=1)))
        np.testing.assert_allclose(fitted.means[nearest], truth, atol=0.01)
        assert fitted.weights[nearest] == pytest.approx(0.5, abs=0.05)


def test_max_components_is_capped_at_the_number_of_palettes() -> None:
    palettes = _two_clusters()[::100]  # 3 rows
    assert sorted(aic_by_components(palettes, max_components=30, seed=0)) == [1, 2, 3]


def test_fit_is_deterministic_for_a_seed(palettes: np.ndarray, fitted: PaletteEstimator) -> None:
    again = PaletteEstimator.fit(palettes, NAMES, max_components=5, seed=0)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fitted, name))
    assert aic_by_components(palettes, 5, 0) == aic_by_components(palettes, 5, 0)


def test_samples_lie_on_the_simplex_and_match_the_data_mean(palettes: np.ndarray, fitted: PaletteEstimator) -> None:
    samples = fitted.sample(4000, np.random.default_rng(1))
    assert samples.shape == (4000, 5) and samples.dtype == np.float32
    assert (samples >= 0).all()
    np.testing.assert_allclose(samples.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(samples.mean(axis=0), palettes.mean(axis=0), atol=0.01)
    np.testing.assert_array_equal(fitted.sample(10, np.random.default_rng(7)), fitted.sample(10, np.random.default_rng(7)))


def test_a_draw_without_positive_entry_falls_back_to_its_component_mean() -> None:
    # Draws are mean + z * (1, 1, 1, 1) (plus tiny noise) with z ~ N(0, 1): for z < -0.4 every entry is negative.
    mean = np.array([0.4, 0.3, 0.2, 0.1])
    estimator = PaletteEstimator(np.ones(1), mean[None], (np.ones((4, 4)) + 1e-8 * np.eye(4))[None], NAMES[:4])
    samples = estimator.sample(4000, np.random.default_rng(0))
    assert (samples >= 0).all()
    np.testing.assert_allclose(samples.sum(axis=1), 1.0, atol=1e-6)
    at_mean = np.isclose(samples, mean.astype(np.float32), rtol=0, atol=1e-6).all(axis=1).mean()
    assert at_mean == pytest.approx(0.345, abs=0.03)  # P(z < -0.4)


def test_complete_keeps_requested_entries_and_sums_to_one(fitted: PaletteEstimator) -> None:
    for rng in (None, np.random.default_rng(3)):
        palette = fitted.complete({0: 0.35, 3: 0.25}, rng)
        assert palette.shape == (5,) and palette.dtype == np.float64
        assert palette[0] == 0.35 and palette[3] == 0.25
        assert (palette >= 0).all()
        assert palette.sum() == pytest.approx(1.0, abs=1e-12)


def test_conditional_mean_of_one_gaussian_matches_the_closed_form() -> None:
    mean = np.array([0.4, 0.3, 0.2, 0.1])
    covariance = _simplex_covariance([4.0, 3.0, 2.0, 1.0], scale=1e-3)
    estimator = PaletteEstimator(np.ones(1), mean[None], covariance[None], NAMES[:4])
    expected, _ = _gaussian_conditional(mean, covariance, [0, 2], [0.5, 0.15])
    # No clipping happens, and on a covariance with zero row sums the conditional mean already carries the remaining mass.
    assert (expected > 0).all()
    assert expected.sum() == pytest.approx(1.0 - 0.5 - 0.15, abs=1e-12)
    palette = estimator.complete({2: 0.15, 0: 0.5})
    np.testing.assert_allclose(palette[[1, 3]], expected, rtol=0, atol=1e-12)
    assert palette[0] == 0.5 and palette[2] == 0.15


def test_conditional_draws_follow_the_conditional_gaussian() -> None:
    mean = np.array([0.4, 0.3, 0.2, 0.1])
    covariance = _simplex_covariance([4.0, 3.0, 2.0, 1.0], scale=1e-4)
    estimator = PaletteEstimator(np.ones(1), mean[None], covariance[None], NAMES[:4])
    expected_mean, expected_covariance = _gaussian_conditional(mean, covariance, [0], [0.45])
    rng = np.random.default_rng(0)
    draws = np.stack([estimator.complete({0: 0.45}, rng) for _ in range(1000)])
    assert (draws[:, 0] == 0.45).all()
    np.testing.assert_allclose(draws[:, 1:].mean(axis=0), expected_mean, atol=1e-3)
    np.testing.assert_allclose(np.cov(draws[:, 1:], rowvar=False), expected_covariance, atol=2e-5)


def test_posterior_picks_the_component_matching_the_request() -> None:
    means = np.stack([CLUSTER_A[:4], CLUSTER_B[:4]])
    covariances = np.stack([_simplex_covariance([1.0, 2.0, 1.0, 1.0], 1e-3), _simplex_covariance([2.0, 1.0, 1.0, 2.0], 1e-3)])
    weights = np.array([0.3, 0.7])
    estimator = PaletteEstimator(weights, means, covariances, NAMES[:4])
    request = {0: 0.55}
    conditionals = [_gaussian_conditional(means[k], covariances[k], [0], [0.55])[0] for k in range(2)]
    # Posterior weights by hand: prior weight times each component's marginal density of road = 0.55.
    likelihood = np.array([weights[k] * multivariate_normal.pdf(0.55, means[k, 0], covariances[k, 0, 0]) for k in range(2)])
    posterior = likelihood / likelihood.sum()
    assert posterior[0] > 0.999  # road at 55% is typical of component A, extreme for B (mean 10%)
    palette = estimator.complete(request)
    np.testing.assert_allclose(palette[1:], posterior @ np.stack(conditionals), rtol=0, atol=1e-12)
    np.testing.assert_allclose(palette[1:], conditionals[0], atol=1e-3)
    # Draws come from component A's conditional too: sky stays near A's 10%, never near B's 60%.
    draws = np.stack([estimator.complete(request, np.random.default_rng(seed)) for seed in range(50)])
    assert draws[:, 3].max() < 0.3


def test_clipped_completion_falls_back_to_the_mixture_mean() -> None:
    # Strong positive correlation: road far below its mean drives every other class negative.
    correlated = 0.01 * (0.1 * np.eye(4) + 0.9 * np.ones((4, 4)))
    spread = PaletteEstimator(np.ones(1), np.array([[0.7, 0.2, 0.1, 0.0]]), correlated[None], NAMES[:4])
    np.testing.assert_allclose(spread.complete({0: 0.1}), [0.1, 0.6, 0.3, 0.0], atol=1e-12)
    uniform = PaletteEstimator(np.ones(1), np.array([[1.0, 0.0, 0.0, 0.0]]), correlated[None], NAMES[:4])
    np.testing.assert_allclose(uniform.complete({0: 0.1}), [0.1, 0.3, 0.3, 0.3], atol=1e-12)


def test_complete_with_all_or_no_classes(fitted: PaletteEstimator) -> None:
    full = {0: 0.5, 1: 0.2, 2: 0.1, 3: 0.2, 4: 0.0}
    np.testing.assert_array_equal(fitted.complete(full), [0.5, 0.2, 0.1, 0.2, 0.0])
    with pytest.raises(InputError, match="sum to 0.9"):
        fitted.complete({**full, 0: 0.4})
    np.testing.assert_allclose(fitted.complete({}), fitted.weights @ fitted.means, atol=1e-9)
    drawn = fitted.complete({}, np.random.default_rng(0))
    assert (drawn >= 0).all() and drawn.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(fitted.complete({0: 0.6, 3: 0.4}), [0.6, 0.0, 0.0, 0.4, 0.0])


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({0: 0.7, 3: 0.4}, "sum to 1.1"),
        ({1: -0.1}, r"class 1 \(building\) has proportion -0.1"),
        ({2: 1.5}, "outside"),
        ({2: float("nan")}, "outside"),
        ({5: 0.1}, "class index 5"),
        ({-1: 0.1}, "class index -1"),
    ],
)
def test_complete_rejects_invalid_requests(fitted: PaletteEstimator, request_: dict[int, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        fitted.complete(request_)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_completion_is_a_palette_with_the_requested_entries(fitted: PaletteEstimator, data: st.DataObject) -> None:
    indices = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=4, unique=True))
    shares = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(indices), max_size=len(indices)))
    total = data.draw(st.floats(0.0, 1.0))
    request = {index: share * total / max(sum(shares), 1.0) for index, share in zip(indices, shares, strict=True)}
    seed = data.draw(st.none() | st.integers(0, 2**32 - 1))
    palette = fitted.complete(request, None if seed is None else np.random.default_rng(seed))
    assert all(palette[index] == value for index, value in request.items())
    assert (palette >= 0).all()
    assert palette.sum() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("row", "message"),
    [([0.5, 0.5, 0.1, 0.0, 0.0], "row 3 sums to 1.1"), ([1.2, -0.2, 0.0, 0.0, 0.0], "row 3 has a negative entry"), ([np.nan] * 5, "row 3 has NaN")],
)
def test_fit_rejects_rows_that_are_not_palettes(palettes: np.ndarray, row: list[float], message: str) -> None:
    bad = palettes[:10].copy()
    bad[3] = row
    bad[6] = row
    with pytest.raises(InputError, match=message):
        PaletteEstimator.fit(bad, NAMES, max_components=2)


def test_fit_rejects_too_few_rows_and_mismatched_names(palettes: np.ndarray) -> None:
    with pytest.raises(InputError, match="at least 2"):
        PaletteEstimator.fit(palettes[:1], NAMES)
    with pytest.raises(InputError, match="4 class names"):
        PaletteEstimator.fit(palettes, NAMES[:4])


def test_constructor_validates_shapes() -> None:
    mean = np.full((1, 4), 0.25)
    covariance = np.eye(4)[None]
    with pytest.raises(ValueError, match=r"means: expected shape \(K, C\)"):
        PaletteEstimator(np.ones(1), mean, covariance, NAMES[:3])
    with pytest.raises(ValueError, match=r"covariances: expected shape \(K, C, C\)"):
        PaletteEstimator(np.ones(1), mean, np.eye(4), NAMES[:4])
    with pytest.raises(ValueError, match="weights"):
        PaletteEstimator(np.array([0.5, 0.6]), np.tile(mean, (2, 1)), np.tile(covariance, (2, 1, 1)), NAMES[:4])
    with pytest.raises(ValueError, match="not symmetric"):
        PaletteEstimator(np.ones(1), mean, np.triu(np.ones((4, 4)))[None], NAMES[:4])


def test_state_dict_round_trip_through_a_weights_only_checkpoint(tmp_path: Path, palettes: np.ndarray, fitted: PaletteEstimator) -> None:
    state = fitted.state_dict()
    assert set(state) == {"weights", "means", "covariances"}
    assert all(tensor.dtype == torch.float64 for tensor in state.values())
    torch.save({"palette": state}, tmp_path / "palette.pt")
    loaded = torch.load(tmp_path / "palette.pt", map_location="cpu", weights_only=True)["palette"]
    restored = PaletteEstimator.from_state_dict(loaded, NAMES)
    np.testing.assert_array_equal(restored.log_likelihood(palettes), fitted.log_likelihood(palettes))
    assert restored.class_names == NAMES


def test_from_state_dict_names_the_bad_key(fitted: PaletteEstimator) -> None:
    state = fitted.state_dict()
    with pytest.raises(ValueError, match="means"):
        PaletteEstimator.from_state_dict({key: value for key, value in state.items() if key != "means"}, NAMES)
    with pytest.raises(ValueError, match="covariances"):
        PaletteEstimator.from_state_dict({**state, "covariances": state["covariances"][:, :3]}, NAMES)
    with pytest.raises(ValueError, match="extra"):
        PaletteEstimator.from_state_dict({**state, "extra": state["weights"]}, NAMES)


def test_log_likelihood_of_one_component_is_its_gaussian_density() -> None:
    mean = np.array([0.4, 0.3, 0.2, 0.1])
    covariance = _simplex_covariance([4.0, 3.0, 2.0, 1.0], 1e-3) + 1e-4 * np.eye(4)
    estimator = PaletteEstimator(np.ones(1), mean[None], covariance[None], NAMES[:4])
    points = np.array([[0.4, 0.3, 0.2, 0.1], [0.5, 0.2, 0.2, 0.1]])
    np.testing.assert_allclose(estimator.log_likelihood(points), multivariate_normal.logpdf(points, mean, covariance), rtol=1e-12)
    singular = PaletteEstimator(np.ones(1), mean[None], _simplex_covariance([4.0, 3.0, 2.0, 1.0], 1e-3)[None], NAMES[:4])
    with pytest.raises(ValueError, match=r"covariances\[0\] is not positive definite"):
        singular.log_likelihood(points)
