"""seqexp: fair, fast comparisons of user-behaviour sequence encoders."""

__version__ = "0.1.0"
