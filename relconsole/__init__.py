"""relconsole: a terminal release console."""

__version__ = "0.1.0"
