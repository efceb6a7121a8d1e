"""Proteins as an adapter over the engine: alphabet, I/O, positions, the model, design.

Importing the adapter registers ESM-2 as a denoiser architecture of the core ("esm2"); fair-esm
itself is imported only when such a model is built.
"""

from seqdiff.core.bundle import register_denoiser


def _esm_denoiser(cfg):
    from seqdiff.protein.esm import ESMDenoiser

    return ESMDenoiser(cfg)


register_denoiser("esm2", _esm_denoiser)
