"""District mail gateway: an SMTP filtering proxy enforcing board policy 5.125."""

__version__ = "0.1.0"
