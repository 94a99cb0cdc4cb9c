"""Hyperband schedules in words: a table of one, and where two differ.

`ktlab brackets` prints both; `tuners.plans.schedule` shows how to call them.
"""

from __future__ import annotations

from tuners.plans import schedule as hyperband_schedule


def compare_schedules(keras_tuner: hyperband_schedule.Schedule,
                      paper: hyperband_schedule.Schedule) -> list[str]:
    """Lists, in words, where two schedules differ.

    Brackets are matched by iteration and bracket number; rounds by round number.

    Args:
        keras_tuner: The first schedule, usually from `keras_tuner_schedule`.
        paper: The second schedule, usually from `paper_schedule`.

    Returns:
        One line per difference: the number of brackets, each round's configurations,
        epochs and epochs trained, and the totals. An empty list when they agree.
    """
    first_name, second_name = keras_tuner.source, paper.source
    if first_name == second_name:
        first_name, second_name = f"first ({first_name})", f"second ({second_name})"

    def differ(label: str, first: float, second: float) -> list[str]:
        if first == second:
            return []
        return [
            f"{label}: {_format_number(first)} ({first_name}) vs "
            f"{_format_number(second)} ({second_name})"
        ]

    lines = differ("brackets", len(keras_tuner.brackets), len(paper.brackets))
    first_brackets = {
        (bracket.iteration, bracket.index): bracket for bracket in keras_tuner.brackets
    }
    second_brackets = {(bracket.iteration, bracket.index): bracket for bracket in paper.brackets}
    for key, first_bracket in first_brackets.items():
        name = _bracket_name(first_bracket)
        second_bracket = second_brackets.get(key)
        if second_bracket is None:
            lines.append(f"{name}: only in {first_name}")
            continue
        lines += differ(f"{name} rounds", len(first_bracket.rounds), len(second_bracket.rounds))
        for first_round, second_round in zip(
            first_bracket.rounds, second_bracket.rounds, strict=False
        ):
            label = f"{name} round {first_round.index}"
            lines += differ(
                f"{label} configurations", first_round.configurations, second_round.configurations
            )
            lines += differ(f"{label} epochs", first_round.epochs, second_round.epochs)
            lines += differ(
                f"{label} epochs trained per configuration",
                first_round.epochs_trained,
                second_round.epochs_trained,
            )
    for key, second_bracket in second_brackets.items():
        if key not in first_brackets:
            lines.append(f"{_bracket_name(second_bracket)}: only in {second_name}")
    lines += differ("total trials", keras_tuner.total_trials, paper.total_trials)
    lines += differ(
        "total configurations", keras_tuner.total_configurations, paper.total_configurations
    )
    lines += differ("total epochs trained", keras_tuner.total_epochs, paper.total_epochs)
    return lines


def format_schedule(schedule: hyperband_schedule.Schedule) -> str:
    """Formats a schedule as a plain-text table, one line per round.

    Args:
        schedule: The schedule to format.

    Returns:
        A title line, a header, one line per round (iteration, bracket, round,
        configurations, initial epoch, epochs, epochs trained per configuration and
        in the round), and a totals line.
    """
    header = (
        "iteration",
        "bracket",
        "round",
        "configurations",
        "initial_epoch",
        "epochs",
        "trained_each",
        "trained_round",
    )
    rows = [header]
    for bracket in schedule.brackets:
        for round_ in bracket.rounds:
            rows.append(
                (
                    str(bracket.iteration),
                    str(bracket.index),
                    str(round_.index),
                    str(round_.configurations),
                    _format_number(round_.initial_epoch),
                    _format_number(round_.epochs),
                    _format_number(round_.epochs_trained),
                    _format_number(round_.total_epochs),
                )
            )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    restart = "resumed from checkpoints" if schedule.warm_start else "trained from scratch"
    lines = [
        f"Hyperband schedule ({schedule.source}): max_epochs={schedule.max_epochs}, "
        f"factor={schedule.factor}, promotions {restart}"
    ]
    lines += [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.append(
        f"total: {len(schedule.brackets)} brackets, {schedule.total_trials} trials, "
        f"{schedule.total_configurations} configurations, "
        f"{_format_number(schedule.total_epochs)} epochs trained"
    )
    return "\n".join(lines)


def _format_number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}"


def _bracket_name(bracket: hyperband_schedule.Bracket) -> str:
    if bracket.iteration:
        return f"iteration {bracket.iteration} bracket {bracket.index}"
    return f"bracket {bracket.index}"
