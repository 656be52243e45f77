"""Weir: a time-series database that speaks InfluxDB 3 Core's API, with an isolated Python processing engine."""

__version__ = "0.1.0"
