"""Offline data layer: data root, UNER reader and registry, OLMo tokenizer, word/subword
alignment, and the pretraining corpus loader (see ``docs/data.md``).

Submodules are imported where needed, so ``import picomaml.data`` stays cheap.
"""
