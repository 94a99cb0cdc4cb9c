"""The trial observers of `tuners.tuner.Tuner`, and what they keep.

`trial_observer` names the hooks; `recorder` writes the histories (with
`trial_recording`, the running trial's record); `epoch_limit` ends a search at a number
of epochs; `pruning` stops trials by a rule; `epoch_budget` continues a parent trial's
checkpoint (`optimizer_state`) and keeps models for promotions (`kept_models`);
`checkpoints` deletes the checkpoints no one will load again.
"""
