"""The structured schemas are built once per process (``schema.structured``): a check must never
change the shared one, or one command's values would leak into the next."""

from omegaconf import OmegaConf

from mgnet_cli import schema
from mgnet_cli.schema import train


def test_a_merge_leaves_the_shared_schema_as_built():
    shared = schema.structured(train.TrainerConfig)
    built = OmegaConf.to_yaml(OmegaConf.structured(train.TrainerConfig))
    first = schema.merged(shared, {"epochs": 3}, "")
    first.epochs = 11
    second = schema.merged(shared, {}, "")
    assert schema.structured(train.TrainerConfig) is shared
    assert OmegaConf.to_yaml(shared) == built
    assert (first.epochs, second.epochs) == (11, train.TrainerConfig().epochs)
