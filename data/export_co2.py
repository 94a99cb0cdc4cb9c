"""Regenerate `data/co2_weekly.csv` from the copy of the Mauna Loa CO2 series in statsmodels.

Run once, in any environment that has `pandas`; it reads the wheel as a zip file, so
statsmodels is neither installed nor imported:

```
pip download --no-deps -d /tmp/dl statsmodels
python data/export_co2.py /tmp/dl/statsmodels-*.whl
```
"""

from __future__ import annotations

import io
import pathlib
import sys
import zipfile

import pandas as pd

MEMBER = "statsmodels/datasets/co2/co2.csv"
OUTPUT = pathlib.Path(__file__).resolve().parent / "co2_weekly.csv"


def export(wheel: pathlib.Path, output: pathlib.Path = OUTPUT) -> pd.DataFrame:
    """Writes the weekly series with ISO dates and the values exactly as the source spells them.

    The source's dates are `YYYYMMDD` integers and its column is `co2`; they become `date`
    (YYYY-MM-DD) and `co2_ppm`. The values are copied as text rather than parsed and
    printed again, so that no float formatting changes them, and the source's empty cells
    (weeks without a measurement) stay empty: the pipeline's gap policy decides about them.

    Args:
        wheel: A statsmodels wheel file.
        output: Where to write the CSV.

    Returns:
        The exported frame, as text.
    """
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(MEMBER).decode("ascii")
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame = pd.DataFrame({
        "date": pd.to_datetime(raw["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d"),
        "co2_ppm": raw["co2"].str.strip(),
    })
    frame.to_csv(output, index=False, lineterminator="\n")
    return frame


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python data/export_co2.py STATSMODELS_WHEEL")
    exported = export(pathlib.Path(sys.argv[1]))
    empty = int((exported["co2_ppm"] == "").sum())
    print(f"wrote {OUTPUT}: {len(exported)} rows, {empty} empty values, "
          f"{exported['date'].iloc[0]} to {exported['date'].iloc[-1]}")
