"""The Pico decoder and its Hugging Face-format checkpoints."""

from picomaml.model.pico import TIERS, PicoConfig, PicoDecoder, config_for, count_parameters
from picomaml.model.pico_files import (
    check_vocab,
    config_dict,
    load_pico,
    read_pico_config,
    save_pico,
)

__all__ = [
    "TIERS",
    "PicoConfig",
    "PicoDecoder",
    "check_vocab",
    "config_dict",
    "config_for",
    "count_parameters",
    "load_pico",
    "read_pico_config",
    "save_pico",
]
