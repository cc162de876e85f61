"""gbmeter: host toolkit for the gbmeter GSME/ESME test stub."""

__version__ = "0.2.0"     # the firmware it deploys: firmware/appdiag.py VERSION
