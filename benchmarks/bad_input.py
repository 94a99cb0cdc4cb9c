"""Prints how long `ktlab` takes to answer bad input, through its real entry point.

Each case runs the `ktlab` console script in a fresh process, as a user would, several
times; the script prints the median wall time per case, the number of stderr lines and
the exit code. The goal is one line, exit code 2, in under 2 s: the answer comes before
TensorFlow is imported (about 7 s on a 2-core machine), and scikit-learn and matplotlib
load only once a file has passed its checks.

    python benchmarks/bad_input.py
    python benchmarks/bad_input.py --repeats 5
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROWS = ["Date,Open,High,Low,Close,Adj Close,Volume"] + [
    f"2020-01-{day:02d},10,11,9,10,10,{100 + day}" for day in range(1, 29)]


def cases(directory: pathlib.Path) -> dict[str, list[str]]:
    """`{case: ktlab arguments}`, writing the files the cases need into `directory`."""
    def write(name: str, lines: list[str]) -> str:
        path = directory / name
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    inf_rows = [*ROWS[:3], ROWS[3].rsplit(",", 1)[0] + ",inf", *ROWS[4:]]
    config = directory / "bad.toml"
    config.write_text('[tuner]\nmax_epochs = "nine"\n')
    return {
        "missing file (data)": ["data", "--data", str(directory / "missing.csv")],
        "missing file (tune)": ["tune", "--data", str(directory / "missing.csv")],
        "inf in volume": ["tune", "--data", write("inf.csv", inf_rows)],
        "series too short": ["tune", "--data", write("short.csv", ROWS)],
        "wrong config value": ["tune", "--config", str(config)],
        "unknown tuner": ["tune", "--tuner", "annealing"],
        "unknown model": ["tune", "--model", "resnet"],
        "unknown flag": ["tune", "--bogus"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ktlab = shutil.which("ktlab") or str(pathlib.Path(sys.executable).parent / "ktlab")
    print(f"{'case':<22} {'median s':>9} {'max s':>7} {'stderr lines':>13} {'exit':>5}")
    with tempfile.TemporaryDirectory() as scratch:
        for name, arguments in cases(pathlib.Path(scratch)).items():
            seconds, lines, codes = [], set(), set()
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = subprocess.run([ktlab, *arguments], capture_output=True, text=True,
                                        cwd=scratch)
                seconds.append(time.perf_counter() - started)
                lines.add(len(result.stderr.splitlines()))
                codes.add(result.returncode)
            print(f"{name:<22} {statistics.median(seconds):>9.2f} {max(seconds):>7.2f} "
                  f"{','.join(map(str, sorted(lines))):>13} "
                  f"{','.join(map(str, sorted(codes))):>5}")


if __name__ == "__main__":
    main()
