"""mclust 6.0.0's reference results for iris and faithful, stored in the repository.

``tests/data/mclust_reference`` is a copy of the project's shared reference folder
(its README says how R computed each file), so the tests run wherever the repository is.
"""

from pathlib import Path

import pandas as pd

MCLUST_REFERENCE = Path(__file__).parent / "data" / "mclust_reference"


def reference_data(name):
    """The numeric columns of ``<name>.csv`` (iris without Species, faithful)."""
    return pd.read_csv(MCLUST_REFERENCE / f"{name}.csv").select_dtypes("number").to_numpy(float)
