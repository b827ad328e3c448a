"""Every option of configs/smoother/, on a tiny MgNet: a new smoother YAML is tested with no other edit."""

import pytest
import torch
from torch import nn

from mgnet_cli.cli.build import build_model
from mgnet_cli.model.summary import summary
from mgnet_cli.model.layers import DataFeatureMap
from tests.conftest import options

SMOOTHERS = options("smoother")
TINY_MGNET = ["model.channels=4", "model.smoothing_steps=[2,1]", "smoother.b_per_step=true"]


def tiny(compose_config, smoother: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(compose_config(f"smoother={smoother}", *TINY_MGNET), 3, 10)


@pytest.mark.parametrize("smoother", SMOOTHERS)
def test_forward_shape_and_a_gradient_for_every_parameter(compose_config, smoother):
    model = tiny(compose_config, smoother)
    logits = model(torch.randn(4, 3, 16, 16))
    assert logits.shape == (4, 10)
    logits.square().mean().backward()
    missing = [name for name, parameter in model.named_parameters()
               if parameter.numel() and (parameter.grad is None or not parameter.grad.abs().sum() > 0)]
    # The one exception: A of a level with a single smoothing step. Its first step's residual
    # f - A u is the restricted fine residual R(f - A u) itself (He & Xu's f^{l+1} adds A^{l+1} u^{l+1}
    # back in, and the step takes it out), so A is applied from the second step on only. The paper's
    # counts include it, so it stays.
    assert missing == ["cycle.levels.1.A.weight"], f"{smoother}: no gradient reaches {missing}"


@pytest.mark.parametrize("smoother", SMOOTHERS)
def test_u_none_is_a_zero_u(compose_config, smoother):
    """The cycle starts from u = 0, passed as None: every smoother must treat both alike."""
    model = tiny(compose_config, smoother).eval()
    level = model.cycle.levels[0]
    f = torch.randn(2, 4, 8, 8)
    A = DataFeatureMap(4, 4)
    with torch.no_grad():
        from_none = level.smoother(None, f, f.clone(), A)
        from_zero = level.smoother(torch.zeros(2, 4, 8, 8), f, f.clone(), A)
    torch.testing.assert_close(from_none, from_zero)


@pytest.mark.parametrize("smoother", SMOOTHERS)
def test_the_info_table_shows_each_levels_steps(compose_config, smoother):
    facts = summary(tiny(compose_config, smoother), 3, 16)
    assert [row["smoothing_steps"] for row in facts["levels"]] == [2, 1]
