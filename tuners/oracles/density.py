"""BOHB's model: kernel density estimates of the good and the bad configurations.

Continuous and integer hyperparameters live on keras-tuner's [0, 1] probability scale
with Gaussian kernels truncated to it; categorical ones get Aitchison-Aitken kernels, as
in statsmodels' `KDEMultivariate`, which the reference implementation (hpbandster) uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.special
from keras_tuner.engine import hyperparameters as hyperparameter_types

from tuners.oracles import values
from tuners.oracles.values import LARGEST_PROBABILITY

# Scott's normal-reference rule, as statsmodels' `KDEMultivariate` (which the
# reference implementation, hpbandster, uses) computes it.
NORMAL_REFERENCE_CONSTANT = 1.06

# hyperopt's and Optuna's "magic clip": a bandwidth is at least the range divided by
# min(MAGIC_CLIP_LIMIT, observations + 1).
MAGIC_CLIP_LIMIT = 100


class DensityModel:
    """The good and bad kernel density estimates of one budget."""

    def __init__(
        self,
        full_space: Sequence[hyperparameter_types.HyperParameter],
        space: Sequence[hyperparameter_types.HyperParameter],
        budget: int,
        good_values: Sequence[dict[str, Any]],
        bad_values: Sequence[dict[str, Any]],
        min_bandwidth: float,
        adaptive_min_bandwidth: bool,
    ) -> None:
        # The full space keeps `Fixed` and every parent, so sampling can walk the
        # conditions; `space` holds the tunable hyperparameters the densities model.
        self.full_space = list(full_space)
        self.space = list(space)
        self.budget = budget
        self.good_values = list(good_values)
        self.categories = [_category_count(hyperparameter) for hyperparameter in self.space]
        self.good = self.encode(self.good_values)
        self.bad = self.encode(bad_values)
        self.good_bandwidths = self._bandwidths(self.good, min_bandwidth, adaptive_min_bandwidth)
        self.bad_bandwidths = self._bandwidths(self.bad, min_bandwidth, adaptive_min_bandwidth)

    def encode(self, configurations: Sequence[dict[str, Any]]) -> np.ndarray:
        """Maps configurations to rows: probabilities, category indices, or NaN if inactive."""
        rows = np.full((len(configurations), len(self.space)), np.nan)
        for row, configuration in enumerate(configurations):
            for column, hyperparameter in enumerate(self.space):
                value = configuration.get(hyperparameter.name)
                if value is None or not values.is_valid_value(hyperparameter, value):
                    continue
                if self.categories[column]:
                    rows[row, column] = _category_index(hyperparameter, value)
                else:
                    probability = hyperparameter.value_to_prob(value)
                    rows[row, column] = min(max(probability, 0.0), 1.0)
        return rows

    def _bandwidths(
        self, data: np.ndarray, min_bandwidth: float, adaptive_min_bandwidth: bool
    ) -> np.ndarray:
        bandwidths = np.empty(len(self.space))
        exponent = -1.0 / (4 + len(self.space))
        for column, categories in enumerate(self.categories):
            active = data[:, column][~np.isnan(data[:, column])]
            spread = float(np.std(active)) if len(active) > 1 else 0.0
            bandwidth = NORMAL_REFERENCE_CONSTANT * spread * max(len(active), 1) ** exponent
            floor = min_bandwidth
            if adaptive_min_bandwidth and categories:
                # A uniform prior with the weight of one observation: its share of
                # the kernel mass that leaves the observed category.
                floor = max(floor, (categories - 1) / categories / (len(active) + 1))
            elif adaptive_min_bandwidth:
                # Probabilities span [0, 1], so the range is 1.
                floor = max(floor, 1.0 / min(MAGIC_CLIP_LIMIT, len(active) + 1))
            bandwidth = max(bandwidth, floor)
            if categories:
                # Aitchison-Aitken: a bandwidth of (c - 1) / c is already uniform.
                bandwidth = min(bandwidth, (categories - 1) / categories)
            bandwidths[column] = bandwidth
        return bandwidths

    def log_density_ratio(self, configurations: Sequence[dict[str, Any]]) -> np.ndarray:
        """Returns log l(x) - log g(x) for each configuration."""
        points = self.encode(configurations)
        good = _log_density(points, self.good, self.good_bandwidths, self.categories)
        bad = _log_density(points, self.bad, self.bad_bandwidths, self.categories)
        return good - bad

    def sample(self, rng: np.random.Generator, bandwidth_factor: float) -> dict[str, Any]:
        """Draws one configuration around a random good configuration."""
        centre_index = int(rng.integers(len(self.good_values)))
        centre = self.good[centre_index]
        columns = {id(hyperparameter): column for column, hyperparameter in enumerate(self.space)}

        def choose(hyperparameter: hyperparameter_types.HyperParameter) -> Any:
            column = columns.get(id(hyperparameter))
            if column is None or np.isnan(centre[column]):
                # The centre lacks this hyperparameter (a child its parent's new
                # value switched on), so there is nothing to sample around.
                return values.random_value(hyperparameter, rng)
            categories = self.categories[column]
            if categories:
                index = int(centre[column])
                if rng.random() < self.good_bandwidths[column]:
                    index = int(rng.integers(categories))
                return _category_value(hyperparameter, index)
            width = self.good_bandwidths[column] * bandwidth_factor
            probability = _truncated_normal(rng, float(centre[column]), width)
            probability = min(probability, LARGEST_PROBABILITY)
            return values.clip_value(hyperparameter, hyperparameter.prob_to_value(probability))

        return values.sample_values(self.full_space, choose)


def _log_density(
    points: np.ndarray, data: np.ndarray, bandwidths: np.ndarray, categories: Sequence[int]
) -> np.ndarray:
    # Product kernels, summed in log space; a dimension inactive on either side
    # contributes a factor of one, so only active hyperparameters are compared.
    log_kernels = np.zeros((len(points), len(data)))
    for column, category_count in enumerate(categories):
        left = points[:, column][:, None]
        right = data[:, column][None, :]
        bandwidth = bandwidths[column]
        if category_count:
            if category_count < 2:
                continue
            same = np.log1p(-bandwidth)
            different = np.log(bandwidth / (category_count - 1))
            values = np.where(left == right, same, different)
        else:
            values = (
                -0.5 * ((left - right) / bandwidth) ** 2
                - np.log(bandwidth)
                - 0.5 * np.log(2 * np.pi)
            )
        inactive = np.isnan(left) | np.isnan(right)
        log_kernels += np.where(inactive, 0.0, values)
    return scipy.special.logsumexp(log_kernels, axis=1) - np.log(len(data))


def _truncated_normal(rng: np.random.Generator, mean: float, width: float) -> float:
    # Inverse-CDF sampling of a normal truncated to [0, 1], with our own generator.
    low = scipy.special.ndtr((0.0 - mean) / width)
    high = scipy.special.ndtr((1.0 - mean) / width)
    if high - low <= 0:
        return min(max(mean, 0.0), 1.0)
    quantile = float(rng.uniform(low, high))
    return min(max(mean + width * float(scipy.special.ndtri(quantile)), 0.0), 1.0)


def _category_count(hyperparameter: hyperparameter_types.HyperParameter) -> int:
    # Zero marks a numerical hyperparameter.
    if isinstance(hyperparameter, hyperparameter_types.Boolean):
        return 2
    if isinstance(hyperparameter, hyperparameter_types.Choice):
        return len(hyperparameter.values)
    return 0


def _category_index(hyperparameter: hyperparameter_types.HyperParameter, value: Any) -> int:
    if isinstance(hyperparameter, hyperparameter_types.Boolean):
        return int(bool(value))
    return list(hyperparameter.values).index(value)


def _category_value(hyperparameter: hyperparameter_types.HyperParameter, index: int) -> Any:
    if isinstance(hyperparameter, hyperparameter_types.Boolean):
        return bool(index)
    return hyperparameter.values[index]


