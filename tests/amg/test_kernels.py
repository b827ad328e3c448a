"""The compiled setup kernels (mgnet_cli/amg/kernels.py) on strength patterns the PDE matrices do not
make: random, unsymmetric, with many equal measures (ties) and measures that rise and fall many times,
the first and second pass against their definitions (tests/amg/test_setup_pinned.py's references)."""

import numpy as np
import pytest
import scipy.sparse as sparse

from mgnet_cli.amg.splitting import second_pass, split_rs
from tests.amg.test_setup_pinned import reference_second_pass, reference_split_rs


def random_pattern(n: int, per_row: int, seed: int) -> sparse.csr_matrix:
    """A 0/1 pattern with about ``per_row`` random dependencies per row (no diagonal), some rows and
    columns empty."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, n * per_row)
    cols = rng.integers(0, n, n * per_row)
    keep = (rows != cols) & (rows % 17 != 0)  # every 17th point depends on nothing
    S = sparse.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))
    S.data[:] = 1.0  # duplicates summed: back to 0/1
    return S


@pytest.mark.parametrize("n, per_row, seed", [(400, 2, 0), (600, 4, 1), (300, 9, 2)])
def test_both_passes_match_their_definitions_on_random_tie_heavy_patterns(n, per_row, seed):
    S = random_pattern(n, per_row, seed)
    first = split_rs(S)
    assert np.array_equal(first, reference_split_rs(S))
    assert np.array_equal(second_pass(S, first), reference_second_pass(S, first))
    assert 0 < first.sum() < n
