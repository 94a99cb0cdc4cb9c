"""Settings: every setting declared once (`schema`), resolved from defaults, a file, flags and
`--set` (`loading`), and the checks that join two settings or read a registry (`checks`).
Nothing here imports TensorFlow.
"""

from pipelines.config.loading import load_config, resolve
from pipelines.config.schema import (
    SECTIONS,
    Config,
    DataConfig,
    ModelConfig,
    RunConfig,
    TunerConfig,
)

__all__ = ["SECTIONS", "Config", "DataConfig", "ModelConfig", "RunConfig", "TunerConfig",
           "load_config", "resolve"]
