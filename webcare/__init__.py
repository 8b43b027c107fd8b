"""Webcare: a joint webcare inbox."""

__version__ = "0.1.0"
