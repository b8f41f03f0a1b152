"""ferry's operator command line: upload and import, watch jobs, inspect, export, replay and simulate callbacks."""

__version__ = "0.1.0"
