"""Search strategies keras-tuner does not ship, as `keras_tuner.Oracle` subclasses.

- `GeneticOracle`: a genetic algorithm (tournament selection, uniform crossover,
  range-respecting mutation, elitism), or NSGA-II's selection with several objectives
  (`tuners.oracles.nsga`).
- `BOHBOracle`: Hyperband whose new configurations come from a kernel density model
  (Falkner et al., 2018).
- `ASHAOracle`: asynchronous successive halving (Li et al., 2020).
- `PBTOracle`: population-based training (Jaderberg et al., 2017).
"""

from tuners.oracles.asha import ASHAOracle
from tuners.oracles.bohb import BOHBOracle
from tuners.oracles.genetic import GeneticOracle
from tuners.oracles.pbt import PBTOracle

__all__ = ["ASHAOracle", "BOHBOracle", "GeneticOracle", "PBTOracle"]
