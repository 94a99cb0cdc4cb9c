"""Settings: the typed schema and file loading (`schema`), and the checks a type cannot express
(`checks`). Nothing here imports TensorFlow."""

from pipelines.config.schema import (
    SECTIONS,
    Config,
    DataConfig,
    ModelConfig,
    RunConfig,
    TunerConfig,
    load_config,
)

__all__ = ["SECTIONS", "Config", "DataConfig", "ModelConfig", "RunConfig", "TunerConfig",
           "load_config"]
