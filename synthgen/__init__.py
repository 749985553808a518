"""synthgen: make language models produce diverse synthetic datasets."""

__version__ = "0.1.0"
