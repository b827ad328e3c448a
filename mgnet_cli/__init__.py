"""mgnet: train, evaluate and compare MgNet models, and run the same multigrid cycle as a PDE solver.

As a library (what a notebook needs; nothing is imported until used)::

    from mgnet_cli import MgNet, build_model, create_model, load_model
    MgNet()                                  # the paper's MgNet[2,2,2,2]-256 on CIFAR-10
    build_model("smoother=chebyshev model.channels=64")  # what `mgnet train <overrides>` builds
    create_model("mgnet_cifar100")           # a preset of configs/experiment/
    load_model("outputs/<date>/<time>")      # a trained model from its run folder or checkpoint
"""

__version__ = "0.1.0"
__all__ = ["MgNet", "build_model", "create_model", "load_model"]


def __getattr__(name: str):
    """The exports, imported on first use (``import mgnet_cli`` stays instant for the CLI)."""
    if name == "MgNet":
        from mgnet_cli.model.mgnet import MgNet

        return MgNet
    if name in ("build_model", "create_model", "load_model"):
        from mgnet_cli import library

        return getattr(library, name)
    raise AttributeError(f"module 'mgnet_cli' has no attribute {name!r}")
