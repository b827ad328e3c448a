"""Learned interpolation for classical AMG (after Luz, Galun, Maron, Basri and Yavneh, ICML 2020):
a graph network over the sparsity pattern of A predicts the F rows' interpolation weights on the
classical interpolation's pattern. The C/F split and the pattern of P are the classical ones
(splitting.py, interpolation.py); only the values of the F rows' entries are learned, C rows stay identity.

The graph: a node per unknown (features: is C, is F), an edge (i, j) per off-diagonal entry of A
or entry of P (features: ``a_ij / a_ii``, ``a_ij / a_jj``, strong, the classical weight ``w_ij``,
on P's pattern). Encode, ``rounds`` message-passing rounds (each edge updated from itself and its
two ends, each node from itself and the mean of its incoming edges, both residual), decode each P
edge to a bounded relative correction of its classical weight (at most ``CHANGE``), the row then
rescaled to the classical row sum (constants stay interpolated as classical interpolates them). The decoder's last layer starts at zero: an untrained
network is classical AMG, exactly. Plain torch: ``index_add_`` does the scatter.

A weights file (``interpolation_learning.save_interpolation``) is a learned part's file
(mgnet_cli/pde/learning.py's ``save_part``): the network's size and weights beside the record of its
training; ``load_interpolation`` refuses anything else, a damaged record included, in one line.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sparse
import torch
from torch import nn

from mgnet_cli.amg.interpolation import assemble, classical_interpolation, lookup
from mgnet_cli.errors import MgnetError
from mgnet_cli.pde.learning import load_part
from mgnet_cli.schema.solve import InterpolationLearningConfig

NODE_FEATURES = 2  # is C, is F
EDGE_FEATURES = 5  # a_ij / a_ii, a_ij / a_jj, strong, classical weight, on P's pattern
CHANGE = 0.5  # a learned weight is its classical one times 1 +- at most this
KIND = "learned_interpolation"  # a weights file's "kind"


@dataclass
class InterpolationGraph:
    """One matrix as the network sees it: node and edge features, each edge's row (receiver) and
    column (sender), and which edges are P's F-row entries (``on_p``, in the order of ``weights``)."""

    nodes: torch.Tensor  # (n, NODE_FEATURES)
    edges: torch.Tensor  # (edges, EDGE_FEATURES)
    rows: torch.Tensor  # (edges,) int64
    cols: torch.Tensor  # (edges,) int64
    on_p: torch.Tensor  # (edges,) bool
    classical: torch.Tensor  # (entries of P in F rows,) float64, the classical weights
    is_c: np.ndarray  # (n,) bool

    def p_rows(self) -> torch.Tensor:
        return self.rows[self.on_p]

    def p_coarse_cols(self) -> torch.Tensor:
        """The coarse column of each learned weight."""
        coarse_index = torch.from_numpy(np.cumsum(self.is_c) - 1)
        return coarse_index[self.cols[self.on_p]]


def interpolation_graph(A: sparse.csr_matrix, S: sparse.csr_matrix, is_c: np.ndarray,
                        P: sparse.csr_matrix) -> InterpolationGraph:
    """The graph of ``A`` with the split ``is_c``, strength ``S`` and the classical ``P`` (n x n_coarse)."""
    n = A.shape[0]
    entries = P.tocoo()
    f_row = ~is_c[entries.row]
    P_fine = sparse.csr_matrix((entries.data[f_row], (entries.row[f_row], np.flatnonzero(is_c)[entries.col[f_row]])),
                               shape=(n, n))  # the F rows, columns by fine index
    off = (A - sparse.diags(A.diagonal())).tocsr()
    off.eliminate_zeros()
    marker = P_fine.copy()
    marker.data[:] = 1.0
    pattern = (abs(off) + marker).tocoo()  # every coupling and every interpolation entry
    order = np.lexsort((pattern.col, pattern.row))
    rows, cols = pattern.row[order].astype(np.int64), pattern.col[order].astype(np.int64)
    values, diagonal = lookup(off, rows, cols), A.diagonal()
    on_p = lookup(marker, rows, cols) > 0
    classical = lookup(P_fine, rows, cols)
    edges = np.stack([values / diagonal[rows], values / diagonal[cols], lookup(S, rows, cols) > 0,
                      classical, on_p], axis=1)
    nodes = np.stack([is_c, ~is_c], axis=1)
    return InterpolationGraph(torch.from_numpy(nodes.astype(np.float32)), torch.from_numpy(edges.astype(np.float32)),
                              torch.from_numpy(rows), torch.from_numpy(cols), torch.from_numpy(on_p),
                              torch.from_numpy(classical[on_p]), is_c)


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


class InterpolationNet(nn.Module):
    """Encode-process-decode over an ``InterpolationGraph``: the F rows' weights (float64), the
    classical ones plus a learned correction."""

    def __init__(self, hidden: int = 32, rounds: int = 3) -> None:
        super().__init__()
        self.hidden, self.rounds = hidden, rounds
        self.encode_node = mlp(NODE_FEATURES, hidden, hidden)
        self.encode_edge = mlp(EDGE_FEATURES, hidden, hidden)
        self.edge_updates = nn.ModuleList(mlp(3 * hidden, hidden, hidden) for _ in range(rounds))
        self.node_updates = nn.ModuleList(mlp(2 * hidden, hidden, hidden) for _ in range(rounds))
        self.decode = mlp(hidden + EDGE_FEATURES, hidden, 1)
        nn.init.zeros_(self.decode[-1].weight)  # untrained: the classical weights, exactly
        nn.init.zeros_(self.decode[-1].bias)

    def forward(self, graph: InterpolationGraph) -> torch.Tensor:
        h, e = self.encode_node(graph.nodes), self.encode_edge(graph.edges)  # (n, hidden), (edges, hidden)
        rows, cols = graph.rows, graph.cols
        degree = torch.zeros(h.shape[0]).index_add_(0, rows, torch.ones(rows.shape[0])).clamp_(min=1)[:, None]
        for edge_update, node_update in zip(self.edge_updates, self.node_updates):
            e = e + edge_update(torch.cat([e, h[rows], h[cols]], dim=1))
            incoming = torch.zeros_like(h).index_add_(0, rows, e) / degree
            h = h + node_update(torch.cat([h, incoming], dim=1))
        correction = self.decode(torch.cat([e[graph.on_p], graph.edges[graph.on_p]], dim=1)).squeeze(1)
        # relative and bounded: each weight within CHANGE of its classical value, its sign kept; then
        # rescaled to the classical row sum, so that what classical interpolates exactly (constants) stays so
        weights = graph.classical * (1 + CHANGE * torch.tanh(correction.double()))
        return weights * row_ratio(graph.classical, weights, graph.p_rows(), graph.nodes.shape[0])

    def state(self) -> dict[str, Any]:
        """What a weights file holds of the network: its size and weights."""
        return {"kind": KIND, "hidden": self.hidden, "rounds": self.rounds, "weights": self.state_dict()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "InterpolationNet":
        """The network of ``state()``; ValueError naming what is wrong."""
        if state.get("kind") != KIND:
            raise ValueError(f"its kind is {state.get('kind')!r}, not {KIND!r}")
        sizes = state.get("hidden"), state.get("rounds")
        largest = InterpolationLearningConfig.LARGEST_WIDTH
        if not all(isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= largest for size in sizes):
            raise ValueError(f"hidden and rounds are not counts from 1 to {largest} ({sizes[0]!r}, {sizes[1]!r})")
        net = cls(*sizes)
        weights = state.get("weights")
        if not isinstance(weights, dict):
            raise ValueError("it has no weights")
        expected = {name: tuple(value.shape) for name, value in net.state_dict().items()}
        found = {name: tuple(value.shape) for name, value in weights.items() if isinstance(value, torch.Tensor)}
        if found != expected:
            wrong = sorted(set(expected) ^ set(found)) or [name for name in expected if found[name] != expected[name]]
            raise ValueError(f"its weights do not fit a network of width {sizes[0]} and {sizes[1]} rounds "
                             f"(missing, extra or wrong shape: {', '.join(wrong[:3])})")
        if not all(torch.isfinite(value).all() for value in weights.values()):
            raise ValueError("a weight is not finite")
        net.load_state_dict(weights)
        return net


def row_ratio(target: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    """Per weight, its row's sum of ``target`` over its sum of ``weights`` (1 where that is 0)."""
    wanted = torch.zeros(n, dtype=target.dtype).index_add_(0, rows, target)
    have = torch.zeros(n, dtype=weights.dtype).index_add_(0, rows, weights)
    return torch.where(have != 0, wanted / torch.where(have != 0, have, 1.0), 1.0)[rows]


def learned_interpolation(net: InterpolationNet, A: sparse.csr_matrix, S: sparse.csr_matrix, is_c: np.ndarray,
                          truncation: float) -> sparse.csr_matrix:
    """P on the classical pattern (classical weights truncated by ``truncation``), its F rows' values by ``net``."""
    P = classical_interpolation(A, S, is_c, truncation)
    graph = interpolation_graph(A, S, is_c, P)
    with torch.no_grad():
        weights = net(graph).numpy()
    return assemble(A.shape[0], is_c, graph.p_rows().numpy(), graph.p_coarse_cols().numpy(), weights, 0.0)


def load_interpolation(path: Path | str) -> tuple[InterpolationNet, dict[str, Any]]:
    """The network of a weights file and the file's other entries, its record checked; MgnetError
    (one line, naming the key) if it holds none."""
    try:
        net, state = load_part(Path(path).expanduser(), InterpolationNet.from_state, InterpolationLearningConfig,
                               "learned interpolation")
    except MgnetError as error:  # missing, not weights-only torch, not a network, a damaged record
        raise MgnetError(f"interpolation_weights: {error}; leave problem.amg.interpolation_weights out to "
                         "learn one") from None
    return net.eval(), state
