"""The sparse operator and transfers of the AMG levels: on the CPU outside autograd their products
are SciPy's kernel, elsewhere torch's; both give the same vectors, and autograd still flows."""

import numpy as np
import scipy.sparse as sparse
import torch

from mgnet_cli.amg.solver import SparseOperator, SparseTransfer
from tests.amg.test_setup import jumps


def test_scipy_and_torch_products_agree_and_autograd_goes_through_torch():
    A = jumps(15)
    P = sparse.random(A.shape[0], 60, density=0.05, random_state=0, format="csr")
    operator, prolong, restrict = SparseOperator(A), SparseTransfer(P), SparseTransfer(P.T)
    u = torch.from_numpy(np.random.default_rng(0).standard_normal(A.shape[0]))
    e = torch.from_numpy(np.random.default_rng(1).standard_normal(60))
    with torch.inference_mode():  # the solve's path: SciPy
        fast = operator(u), operator.residual(u, 2 * u), prolong(e), restrict(u)
    assert torch.allclose(fast[0], torch.from_numpy(A @ u.numpy()), rtol=0, atol=0)
    tracked = u.clone().requires_grad_(True)  # autograd's path: torch's sparse product
    product = operator(tracked)
    product.sum().backward()
    assert torch.allclose(product.detach(), fast[0], rtol=1e-14, atol=1e-12)
    assert torch.allclose(tracked.grad, torch.from_numpy(np.asarray(A.sum(axis=0)).ravel()), rtol=1e-14)
    with torch.no_grad():
        assert torch.allclose(operator.residual(tracked, 2 * u), fast[1], rtol=1e-14, atol=1e-12)
        assert torch.allclose(prolong(e.clone().requires_grad_(True)), fast[2], rtol=1e-14, atol=1e-12)
    assert fast[3].shape == (60,) and torch.allclose(fast[3], torch.from_numpy(P.T @ u.numpy()), rtol=0, atol=0)
