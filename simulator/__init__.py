"""Event-sourced simulator of the Article 4-6 assistance procedure between agencies."""

__version__ = "0.1.0"
