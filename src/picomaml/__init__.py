"""picomaml: meta-pretraining of small Pico decoders for zero-shot cross-lingual NER."""

__version__ = "0.1.0"
