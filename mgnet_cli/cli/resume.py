"""``mgnet train resume=<run folder or checkpoint>``: the run's own config, plus safe overrides."""

from typing import Any

from omegaconf import DictConfig, OmegaConf

from mgnet_cli.errors import ConfigError

# Overrides a resumed run accepts: they change how long, where and how fast it runs, not what it
# learns (the speed switches compute the same function to float tolerance, so a run started on a
# CPU can go on on a GPU in bf16; bit-for-bit resumes need them unchanged).
MAY_CHANGE = ("resume", "trainer.epochs", "trainer.device", "trainer.checkpoints",
              "trainer.eval_batch_size", "trainer.limit_eval_batches", "trainer.precision",
              "trainer.channels_last", "trainer.compile", "trainer.num_workers", "dataset.root",
              "dataset.download", "hydra.")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def resume_config(checkpoint: dict[str, Any], cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The checkpoint's config with the command line's allowed overrides applied on top."""
    refused = [o for o in overrides if not override_key(o).startswith(MAY_CHANGE)]
    if refused:
        raise ConfigError(
            f"resume: {', '.join(refused)} would change the run being resumed; only "
            f"{', '.join(k.rstrip('.') + ('.*' if k.endswith('.') else '') for k in MAY_CHANGE)} "
            "may change (start a new run to change anything else)"
        )
    saved = OmegaConf.create(checkpoint.get("config_source") or checkpoint["config"])
    allowed = [o.lstrip("+") for o in overrides if not override_key(o).startswith("hydra.")]
    merged = OmegaConf.merge(saved, OmegaConf.from_dotlist(allowed))
    return merged
