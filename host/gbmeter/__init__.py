"""gbmeter: host toolkit for the gbmeter GSME/ESME test stub."""

__version__ = "0.1.0"
