"""The results of trials: the histories' records, objectives, measures, the Pareto front.

`records` reads `histories.jsonl` back; `objectives` says which trial is best and in
which direction a metric improves; `pareto_front` sorts trials by several objectives;
`measures` takes a trained model's size and latency; `trial_curves` keeps the finished
trials' curves in memory. None of them imports TensorFlow.
"""
