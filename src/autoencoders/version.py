"""The toolkit's version, as ``pyproject.toml`` gives it: ``autoencoders --version`` prints it, and
a run's report notes it beside the figures it drew."""

__version__ = "0.2.0"
