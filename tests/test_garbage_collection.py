"""The search's garbage collections: one per trial, and objects alive before it frozen.

Real searches on tiny data (`test_tuners.table`); `benchmarks/overhead.py` measures what
this saves.
"""

from __future__ import annotations

import keras
import keras_tuner
import pytest
from test_tuners import finite_dense, table

import tuners


def test_building_a_trials_model_collects_garbage_once(tmp_path, monkeypatch) -> None:
    import gc

    tuner = tuners.build_tuner("random", finite_dense(), directory=tmp_path, max_trials=2)
    calls = []
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(args) or collect(*args))

    model = tuner._try_build(keras_tuner.HyperParameters())

    assert isinstance(model, keras.Model)
    # keras-tuner's own _try_build collects twice (clear_session, then gc.collect).
    assert len(calls) == 1


FROZEN_DURING_TRIALS: list[int] = []


class NoteFrozenObjects(keras.callbacks.Callback):
    def on_train_begin(self, logs=None) -> None:
        # Module-level: keras-tuner deep-copies a trial's callbacks.
        import gc

        FROZEN_DURING_TRIALS.append(gc.get_freeze_count())


def test_objects_alive_before_a_search_are_frozen_until_it_ends(tmp_path) -> None:
    import gc

    gc.unfreeze()
    FROZEN_DURING_TRIALS.clear()
    tuner = tuners.build_tuner("random", finite_dense(), directory=tmp_path, max_trials=2,
                               seed=1)
    tuner.search(x=table(), validation_data=table(16, seed=1), epochs=1,
                 callbacks=[NoteFrozenObjects()], verbose=0)

    assert len(FROZEN_DURING_TRIALS) == 2
    # TensorFlow, Keras and keras-tuner alone hold hundreds of thousands of objects.
    assert min(FROZEN_DURING_TRIALS) > 100_000
    assert gc.get_freeze_count() == 0


def test_objects_are_unfrozen_when_a_search_fails(tmp_path) -> None:
    import gc

    class Broken(keras_tuner.HyperModel):
        broken = False

        def build(self, hp):
            hp.Int("units", 1, 2)
            if self.broken:
                raise keras_tuner.errors.FatalError("broken on purpose")
            return finite_dense().build(hp)

    hypermodel = Broken()
    tuner = tuners.build_tuner("random", hypermodel, directory=tmp_path, max_trials=2)
    hypermodel.broken = True
    with pytest.raises(keras_tuner.errors.FatalError, match="broken on purpose"):
        tuner.search(x=table(), validation_data=table(16, seed=1), epochs=1, verbose=0)
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_before_the_search_is_left_as_it_was(tmp_path) -> None:
    import gc

    gc.unfreeze()
    sentinel = [object()]
    gc.freeze()
    try:
        # gc.get_objects() lists what the collector walks, and so not frozen objects.
        assert not any(item is sentinel for item in gc.get_objects())
        tuner = tuners.build_tuner("random", finite_dense(), directory=tmp_path,
                                   max_trials=1, seed=1)
        tuner.search(x=table(), validation_data=table(16, seed=1), epochs=1, verbose=0)
        # The search did not thaw what its host had frozen.
        assert gc.get_freeze_count() > 100_000
        assert not any(item is sentinel for item in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(item is sentinel for item in gc.get_objects())
