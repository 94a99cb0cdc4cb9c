"""Hyperband schedules: the paper's table, and keras-tuner's oracle driven without training."""

from __future__ import annotations

import keras_tuner
import pytest
from keras_tuner.engine import trial as trial_module

from tuners import errors
from tuners.plans import schedule, schedule_report


def sizes(plan: schedule.Schedule) -> list[list[int]]:
    return [[round_.configurations for round_ in bracket.rounds] for bracket in plan.brackets]


def epochs(plan: schedule.Schedule) -> list[list[float]]:
    return [[round_.epochs for round_ in bracket.rounds] for bracket in plan.brackets]


def drive_hyperband_oracle(
    tmp_path, max_epochs: int, factor: int, hyperband_iterations: int = 1
) -> list[tuple[int, int, int, int]]:
    """Runs a real HyperbandOracle to the end, training nothing.

    Returns (bracket, round, initial_epoch, epochs) per trial, in creation order.
    """
    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Float("x", 0.0, 1.0)
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("val_loss", "min"),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=hyperband_iterations,
        hyperparameters=hyperparameters,
        seed=1,
    )
    oracle._set_project_dir(str(tmp_path), f"hyperband_{max_epochs}_{factor}")
    oracle.verbose = 0
    sequence = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            return sequence
        assert trial.status == trial_module.TrialStatus.RUNNING
        values = trial.hyperparameters.values
        sequence.append(
            (
                values["tuner/bracket"],
                values["tuner/round"],
                values["tuner/initial_epoch"],
                values["tuner/epochs"],
            )
        )
        # Any score works; promotions only need an order.
        oracle.update_trial(trial.trial_id, {"val_loss": values["x"] / values["tuner/epochs"]})
        trial.status = trial_module.TrialStatus.COMPLETED
        oracle.end_trial(trial)


def expected_sequence(plan: schedule.Schedule) -> list[tuple[int, int, float, float]]:
    return [
        (bracket.index, round_.index, round_.initial_epoch, round_.epochs)
        for bracket in plan.brackets
        for round_ in bracket.rounds
        for _ in range(round_.configurations)
    ]


def test_paper_schedule_for_81_epochs_and_factor_3_matches_the_paper():
    plan = schedule.paper_schedule(max_epochs=81, factor=3)

    assert [bracket.index for bracket in plan.brackets] == [4, 3, 2, 1, 0]
    assert [bracket.configurations for bracket in plan.brackets] == [81, 34, 15, 8, 5]
    assert sizes(plan) == [[81, 27, 9, 3, 1], [34, 11, 3, 1], [15, 5, 1], [8, 2], [5]]
    assert epochs(plan) == [[1, 3, 9, 27, 81], [3, 9, 27, 81], [9, 27, 81], [27, 81], [81]]
    assert plan.total_trials == 206
    assert plan.total_configurations == 143
    # Algorithm 1 trains every round from scratch: 5 brackets of about 405 epochs each.
    assert plan.total_epochs == 81 * 5 + (102 + 99 + 81 + 81) + (135 + 135 + 81) + 378 + 405
    assert plan.total_epochs == 1902


def test_paper_schedule_with_warm_start_trains_only_the_new_epochs():
    plan = schedule.paper_schedule(max_epochs=81, factor=3, warm_start=True)

    widest = plan.brackets[0]
    assert [round_.initial_epoch for round_ in widest.rounds] == [0, 1, 3, 9, 27]
    assert [round_.epochs_trained for round_ in widest.rounds] == [1, 2, 6, 18, 54]
    assert plan.total_epochs == 1581


def test_paper_schedule_when_max_epochs_is_not_a_power_of_factor():
    plan = schedule.paper_schedule(max_epochs=10, factor=3)

    assert sizes(plan) == [[9, 3, 1], [5, 1], [3]]
    assert epochs(plan)[0] == [pytest.approx(10 / 9), pytest.approx(10 / 3), 10]
    assert epochs(plan)[1] == [pytest.approx(10 / 3), 10]
    assert plan.total_trials == 22


def test_keras_tuner_schedule_for_81_epochs_and_factor_3():
    plan = schedule.keras_tuner_schedule(max_epochs=81, factor=3)

    # keras-tuner rounds every round up where the paper rounds down.
    assert sizes(plan) == [[81, 27, 9, 3, 1], [34, 12, 4, 2], [15, 5, 2], [8, 3], [5]]
    assert epochs(plan) == [[1, 3, 9, 27, 81], [3, 9, 27, 81], [9, 27, 81], [27, 81], [81]]
    assert [round_.epochs_trained for round_ in plan.brackets[1].rounds] == [3, 6, 18, 54]
    assert plan.total_trials == 211
    assert plan.total_configurations == 143
    assert plan.total_epochs == 1767


def test_keras_tuner_schedule_small_cases():
    assert sizes(schedule.keras_tuner_schedule(9, 3)) == [[9, 3, 1], [5, 2], [3]]
    assert epochs(schedule.keras_tuner_schedule(9, 3)) == [[1, 3, 9], [3, 9], [9]]
    assert sizes(schedule.keras_tuner_schedule(10, 3)) == [[12, 4, 2], [6, 2], [4]]
    assert epochs(schedule.keras_tuner_schedule(10, 3)) == [[2, 4, 10], [4, 10], [10]]
    assert sizes(schedule.keras_tuner_schedule(2, 2)) == [[2, 1], [2]]
    assert epochs(schedule.keras_tuner_schedule(2, 2)) == [[1, 2], [2]]


def test_keras_tuner_float_logarithm_adds_configurations_for_16807_epochs_and_factor_7():
    # math.log(16807, 7) is 5.000000000000001, so keras-tuner's `_get_size` uses
    # ceil(1 + 5.000000000000001) = 7 where the exact logarithm gives 6.
    plan = schedule.keras_tuner_schedule(max_epochs=16807, factor=7)
    paper = schedule.paper_schedule(max_epochs=16807, factor=7)

    assert len(plan.brackets) == len(paper.brackets) == 6
    assert plan.brackets[0].configurations == 19609  # ceil(7 / 6 * 7**5)
    assert paper.brackets[0].configurations == 16807
    assert plan.brackets[0].rounds[-1].configurations == 2  # ceil(7 / 6)
    assert paper.brackets[0].rounds[-1].configurations == 1
    # Where the logarithm is exact the two agree on the widest bracket.
    assert sizes(schedule.keras_tuner_schedule(125, 5))[0] == [125, 25, 5, 1]


@pytest.mark.parametrize(
    ("max_epochs", "factor", "hyperband_iterations", "trials"),
    [(81, 3, 1, 211), (9, 3, 1, 23), (10, 3, 1, 30), (2, 2, 1, 5), (125, 5, 1, 215), (9, 3, 2, 46)],
)
def test_keras_tuner_schedule_matches_a_real_hyperband_oracle(
    tmp_path, max_epochs, factor, hyperband_iterations, trials
):
    plan = schedule.keras_tuner_schedule(max_epochs, factor, hyperband_iterations)
    sequence = drive_hyperband_oracle(tmp_path, max_epochs, factor, hyperband_iterations)

    assert len(sequence) == trials
    assert plan.total_trials == trials
    assert sequence == expected_sequence(plan)


def test_hyperband_iterations_repeat_the_brackets():
    plan = schedule.keras_tuner_schedule(max_epochs=9, factor=3, hyperband_iterations=2)

    assert [(bracket.iteration, bracket.index) for bracket in plan.brackets] == [
        (0, 2),
        (0, 1),
        (0, 0),
        (1, 2),
        (1, 1),
        (1, 0),
    ]
    assert plan.total_trials == 2 * 23


def test_compare_schedules_names_each_difference_for_81_epochs():
    lines = schedule_report.compare_schedules(
        schedule.keras_tuner_schedule(81, 3), schedule.paper_schedule(81, 3)
    )

    differences = [line for line in lines if "configurations:" in line]
    assert differences == [
        "bracket 3 round 1 configurations: 12 (keras-tuner 1.4.8) vs 11 (Li et al. (2018))",
        "bracket 3 round 2 configurations: 4 (keras-tuner 1.4.8) vs 3 (Li et al. (2018))",
        "bracket 3 round 3 configurations: 2 (keras-tuner 1.4.8) vs 1 (Li et al. (2018))",
        "bracket 2 round 2 configurations: 2 (keras-tuner 1.4.8) vs 1 (Li et al. (2018))",
        "bracket 1 round 1 configurations: 3 (keras-tuner 1.4.8) vs 2 (Li et al. (2018))",
    ]
    assert "total trials: 211 (keras-tuner 1.4.8) vs 206 (Li et al. (2018))" in lines
    assert "total epochs trained: 1767 (keras-tuner 1.4.8) vs 1902 (Li et al. (2018))" in lines
    assert (
        "bracket 4 round 4 epochs trained per configuration: 54 (keras-tuner 1.4.8) vs "
        "81 (Li et al. (2018))"
    ) in lines
    assert not any(line.startswith("brackets:") for line in lines)
    assert len(lines) == 17


def test_compare_schedules_is_empty_when_they_agree():
    # For R=2, eta=2 keras-tuner and a warm-started paper schedule are identical.
    assert (
        schedule_report.compare_schedules(
            schedule.keras_tuner_schedule(2, 2), schedule.paper_schedule(2, 2, warm_start=True)
        )
        == []
    )
    assert (
        schedule_report.compare_schedules(schedule.paper_schedule(27, 3),
                                          schedule.paper_schedule(27, 3))
        == []
    )


def test_compare_schedules_reports_different_bracket_counts():
    lines = schedule_report.compare_schedules(
        schedule.keras_tuner_schedule(9, 3), schedule.keras_tuner_schedule(27, 3)
    )

    assert lines[0] == ("brackets: 3 (first (keras-tuner 1.4.8)) vs 4 (second (keras-tuner 1.4.8))")
    assert "bracket 3: only in second (keras-tuner 1.4.8)" in lines


def test_format_schedule_prints_one_line_per_round_and_totals():
    text = schedule_report.format_schedule(schedule.keras_tuner_schedule(9, 3))
    lines = text.splitlines()

    assert lines[0] == (
        "Hyperband schedule (keras-tuner 1.4.8): max_epochs=9, factor=3, "
        "promotions resumed from checkpoints"
    )
    assert lines[1].split() == [
        "iteration",
        "bracket",
        "round",
        "configurations",
        "initial_epoch",
        "epochs",
        "trained_each",
        "trained_round",
    ]
    assert lines[2].split() == ["0", "2", "0", "9", "0", "1", "1", "9"]
    assert lines[3].split() == ["0", "2", "1", "3", "1", "3", "2", "6"]
    assert len(lines) == 2 + 6 + 1
    # Epochs: 9 * 1 + 3 * 2 + 1 * 6, then 5 * 3 + 2 * 6, then 3 * 9.
    assert lines[-1] == "total: 3 brackets, 23 trials, 17 configurations, 75 epochs trained"


def test_format_schedule_shows_fractional_epochs_with_two_decimals():
    lines = schedule_report.format_schedule(schedule.paper_schedule(10, 3)).splitlines()

    assert lines[2].split() == ["0", "2", "0", "9", "0", "1.11", "1.11", "10"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_epochs": 0, "factor": 3}, "max_epochs must be an integer of at least 1, got 0."),
        ({"max_epochs": 81, "factor": 1}, "factor must be an integer of at least 2, got 1."),
        ({"max_epochs": 81, "factor": True}, "factor must be an integer of at least 2, got True."),
        ({"max_epochs": 8.5, "factor": 3}, "max_epochs must be an integer of at least 1, got 8.5."),
        (
            {"max_epochs": 81, "factor": 3, "hyperband_iterations": 0},
            "hyperband_iterations must be an integer of at least 1, got 0.",
        ),
    ],
)
def test_keras_tuner_schedule_rejects_bad_arguments(arguments, message):
    with pytest.raises(errors.TunerConfigError) as raised:
        schedule.keras_tuner_schedule(**arguments)
    assert str(raised.value) == message


def test_paper_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="factor must be an integer of at least 2, got 0"):
        schedule.paper_schedule(81, 0)
    with pytest.raises(ValueError, match="warm_start must be True or False, got 'yes'"):
        schedule.paper_schedule(81, 3, warm_start="yes")
