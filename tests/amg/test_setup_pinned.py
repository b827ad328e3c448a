"""The setup's output pinned while it is made faster (issue 23): the Ruge-Stueben first pass node for
node against a plain reference (every step a full scan), the second pass against its rule written as
a loop, and every level's P and coarse matrix by digests recorded from the setup as of commit 7dc7c66
(to 1e-12 relative), for each splitting and interpolation."""

import numpy as np
import pytest
import scipy.sparse as sparse

from mgnet_cli.amg.settings import SetupSettings
from mgnet_cli.amg.setup import ruge_stuben
from mgnet_cli.amg.splitting import second_pass, split_rs, strength
from tests.amg.test_setup import jumps, poisson


def mixed_signs(n: int, seed: int = 2) -> sparse.csr_matrix:
    """jumps(n) with a few positive off-diagonal couplings added (symmetric; the diagonal raised to keep
    it SPD): exercises the positive-entry paths of the interpolations."""
    A = jumps(n, seed=seed)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, A.shape[0], A.shape[0] // 4)
    cols = np.minimum(rows + rng.integers(2, 3 * n, rows.size), A.shape[0] - 1)
    B = sparse.csr_matrix((0.1 * rng.random(rows.size), (rows, cols)), shape=A.shape)
    B = B + B.T
    return (A + B + sparse.diags(np.asarray(B.sum(axis=1)).ravel())).tocsr()


MATRICES = {"poisson 20": lambda: poisson(20), "jumps 31": lambda: jumps(31),
            "jumps 47 seed 3": lambda: jumps(47, boxes=6, seed=3), "mixed signs 31": lambda: mixed_signs(31)}


def reference_split_rs(S: sparse.csr_matrix) -> np.ndarray:
    """The first pass by definition: each step scans every unassigned point for the largest measure
    (ties to the smaller index), makes it C and its dependants F, and updates the measures."""
    n = S.shape[0]
    dense = S.toarray() > 0  # dense[i, j]: i depends strongly on j
    measure = dense.sum(axis=0).astype(float)
    state = np.where(~dense.any(axis=0) & ~dense.any(axis=1), 2, 0)
    while np.any(state == 0):
        i = int(np.argmax(np.where(state == 0, measure, -np.inf)))  # argmax: the first of the largest
        state[i] = 1
        for j in np.flatnonzero(dense[:, i] & (state == 0)):
            state[j] = 2
            measure[dense[j] & (state == 0)] += 1
        measure[dense[i] & (state == 0)] -= 1
    return state == 1


def reference_second_pass(S: sparse.csr_matrix, is_c: np.ndarray) -> np.ndarray:
    """The second pass's rounds as a loop: in each round every F point of an unserved strong F-F pair
    counts its pairs; those whose (count, index) beats all their unserved partners' become C."""
    dense = S.toarray() > 0
    is_c = is_c.copy()
    n = S.shape[0]
    while True:
        to_c = dense & is_c[None, :]
        pairs = [(i, j) for i, j in np.argwhere(dense) if not is_c[i] and not is_c[j] and not np.any(to_c[i] & to_c[j])]
        if not pairs:
            return is_c
        partners: dict[int, list[int]] = {}
        for i, j in pairs:
            partners.setdefault(i, []).append(j)
            partners.setdefault(j, []).append(i)
        score = {i: (len(js), i) for i, js in partners.items()}
        for i, js in partners.items():
            if all(score[i] > score[j] for j in js):
                is_c[i] = True


@pytest.mark.parametrize("name", MATRICES)
def test_first_and_second_pass_match_their_definitions_node_for_node(name):
    A = MATRICES[name]()
    for level in ruge_stuben(A, SetupSettings(second_pass=False, coarsest_size=200)).A[:3]:
        S = strength(level, 0.25)
        first = split_rs(S)
        assert np.array_equal(first, reference_split_rs(S))
        assert np.array_equal(second_pass(S, first), reference_second_pass(S, first))


def digest(M: sparse.csr_matrix) -> tuple[int, int, float]:
    """rows, stored entries and a position-weighted sum of the values: a change of any entry shows."""
    coo = M.tocoo()
    return M.shape[0], M.nnz, float(np.sum(coo.data * ((7 * coo.row.astype(np.int64) + 13 * coo.col) % 101 + 1)))


OPTIONS = {"defaults": {}, "hmis": {"second_pass": False, "interpolation": "extended_i"},
           "rs extended_i": {"interpolation": "extended_i"}, "rs direct": {"interpolation": "direct"},
           "pmis extended_i": {"splitting": "pmis", "second_pass": False, "interpolation": "extended_i"}}


# recorded from the setup as of commit 7dc7c66: per level, P's and the coarse matrix's digest
PINNED = {
    ('poisson 20', 'defaults'): ([(400, 960, 19694.0), (200, 438, 9644.159035409035)],
        [(200, 1642, 3478.25), (57, 463, 2915.5165521391)]),
    ('poisson 20', 'hmis'): ([(400, 960, 19694.0), (200, 698, 9314.449121480595)],
        [(200, 1642, 3478.25), (51, 865, 2848.157799002193)]),
    ('poisson 20', 'rs extended_i'): ([(400, 960, 19694.0), (200, 730, 9518.126674521896)],
        [(200, 1642, 3478.25), (57, 1005, 2836.7888555373784)]),
    ('poisson 20', 'rs direct'): ([(400, 960, 19694.0), (200, 438, 9662.505402930403)],
        [(200, 1642, 3478.25), (57, 463, 2934.7099823453796)]),
    ('poisson 20', 'pmis extended_i'): ([(400, 1165, 19613.36491287838), (149, 400, 6880.621197643599)],
        [(149, 1893, 3982.5176328829825), (36, 518, 2838.2248599344425)]),
    ('jumps 31', 'defaults'): ([(961, 2301, 48088.50237381309), (481, 1096, 23510.000176374677), (152, 316, 7157.691069106563)],
        [(481, 4081, 3211.602691433394), (152, 1672, 2065.7485585742497), (58, 776, 1649.2536043449384)]),
    ('jumps 31', 'hmis'): ([(961, 2301, 48088.50237381309), (481, 1584, 22295.627523275976), (119, 314, 4859.490025660356)],
        [(481, 4081, 3211.602691433394), (119, 2125, 2349.305682321269), (29, 479, 543.7481903921791)]),
    ('jumps 31', 'rs extended_i'): ([(961, 2301, 48088.50237381309), (481, 1636, 23432.390992704226), (152, 407, 6809.210555691357)],
        [(481, 4081, 3211.602691433394), (152, 2932, 2070.256027280351), (58, 1378, 1379.493072105798)]),
    ('jumps 31', 'rs direct'): ([(961, 2301, 48088.525367231414), (481, 1102, 23487.897001016678), (152, 309, 6912.314254618723)],
        [(481, 4081, 3211.6026754684563), (152, 1682, 2117.265850936332), (56, 772, 1375.0599936842325)]),
    ('jumps 31', 'pmis extended_i'): ([(961, 2780, 47845.978382787056), (364, 972, 17099.184375684577), (81, 173, 3106.8422438921107)],
        [(364, 4704, 3206.2469608074343), (81, 1287, 2139.6074480477255), (18, 192, 722.0432918199808)]),
    ('jumps 47 seed 3', 'defaults'): ([(2209, 5305, 111455.40454772614), (1105, 2515, 55048.95705995476), (343, 700, 15975.712448322904), (127, 209, 5328.552163440192)],
        [(1105, 9569, 4750.589522672571), (343, 3833, 3033.5318544319675), (127, 1699, 2274.2554115319854), (50, 594, 1489.4763734808585)]),
    ('jumps 47 seed 3', 'hmis'): ([(2209, 5305, 111455.40454772614), (1105, 3741, 53794.31419371124), (265, 700, 11858.025991015313)],
        [(1105, 9569, 4750.589522672571), (265, 5119, 2999.935905729283), (61, 1087, 1437.73917629498)]),
    ('jumps 47 seed 3', 'rs extended_i'): ([(2209, 5305, 111455.40454772614), (1105, 3800, 54750.14684439623), (343, 908, 15655.167886277915), (124, 243, 5029.62220017612)],
        [(1105, 9569, 4750.589522672571), (343, 7129, 3067.2799975668504), (124, 3192, 1322.6036890936157), (48, 980, 677.8479916317608)]),
    ('jumps 47 seed 3', 'rs direct'): ([(2209, 5305, 111455.45855958226), (1105, 2531, 55080.657045363856), (343, 703, 15770.578517093267), (124, 228, 5210.348976153178)],
        [(1105, 9569, 4750.589483063377), (343, 3863, 3083.903471172609), (124, 1762, 1980.6152296750759), (52, 724, 834.5452850647396)]),
    ('jumps 47 seed 3', 'pmis extended_i'): ([(2209, 6348, 111020.35730334064), (833, 2216, 40048.736351459105), (178, 426, 7275.702257578195)],
        [(833, 10737, 4757.677073863253), (178, 3074, 2688.9457735035376), (39, 611, 1413.459918227995)]),
    ('mixed signs 31', 'defaults'): ([(961, 2280, 44970.033358220695), (481, 982, 19287.355761172967), (151, 260, 5579.0833243377965)],
        [(481, 6273, 5813.4593242919045), (151, 3757, 3163.0192653357326), (61, 1587, 2724.1608259417917)]),
    ('mixed signs 31', 'hmis'): ([(961, 2280, 44970.033358220695), (481, 1278, 16328.155922790298), (114, 233, 3473.475646390715)],
        [(481, 6273, 5813.4593242919045), (114, 3772, 3281.5703477659363), (33, 671, 1338.7132822520828)]),
    ('mixed signs 31', 'rs extended_i'): ([(961, 2280, 44970.033358220695), (481, 1323, 18872.95277255914), (151, 309, 4972.55317558183)],
        [(481, 6273, 5813.4593242919045), (151, 5369, 3207.26113047106), (59, 1893, 2536.30818879689)]),
    ('mixed signs 31', 'rs direct'): ([(961, 2280, 44970.07754176765), (481, 989, 19340.921705624256), (151, 250, 5500.184570977923)],
        [(481, 6273, 5813.45963245277), (151, 3837, 3187.046404724607), (60, 1466, 2997.0280422473134)]),
    ('mixed signs 31', 'pmis extended_i'): ([(961, 2758, 42769.565930541605), (359, 794, 12943.509898814162), (85, 150, 2140.2857489920507)],
        [(359, 7767, 5945.51037804091), (85, 2541, 3426.68433744318), (21, 325, 1556.8214724421368)]),
}


@pytest.mark.parametrize("name, option", PINNED)
def test_every_level_is_the_one_recorded(name, option):
    hierarchy = ruge_stuben(MATRICES[name](), SetupSettings(**OPTIONS[option]))
    Ps, coarse = PINNED[name, option]
    for matrix, (rows, nnz, value) in zip(hierarchy.P + hierarchy.A[1:], Ps + coarse, strict=True):
        assert (matrix.shape[0], matrix.nnz) == (rows, nnz)
        assert digest(matrix)[2] == pytest.approx(value, rel=1e-12)
