"""Plans of a search's budget: Hyperband's schedule, ASHA's rungs, PBT's population.

They train nothing and import neither TensorFlow nor keras-tuner, so the command line
checks a budget and prints a plan (`ktlab schedule`) before paying for that import.
"""
