"""What a run shows after its search, each a step of the recipe: plots (`plots`, `rung_plots`,
`population_plots`), importances (`importance`) and the Pareto front (`pareto`). They read the
run directory's files; none trains a model."""
