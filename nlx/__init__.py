"""nlx: a command-line laboratory for learning with noisy labels."""

__version__ = "0.1.0"
