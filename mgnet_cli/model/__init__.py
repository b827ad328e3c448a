"""MgNet, the network side of the cycle (mgnet_cli/cycle.py): its stem, learned operators and smoothers
on each level (grid), the ResNet baselines it is compared with, and the summary ``mgnet info`` prints."""
