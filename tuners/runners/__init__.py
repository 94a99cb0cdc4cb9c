"""The trial runners of `tuners.tuner.Tuner`: holdout, or one model per walk-forward fold."""
