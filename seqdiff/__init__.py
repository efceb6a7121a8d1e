"""seqdiff: order-free masked discrete diffusion for proteins and tables."""

__version__ = "0.1.0"
