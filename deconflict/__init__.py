"""deconflict: a deconfliction mechanism for operators who share an airspace but not a chain of command."""

__version__ = "0.1.0"
