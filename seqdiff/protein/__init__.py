"""Proteins as an adapter over the engine: alphabet, I/O, positions, the model, design.

Nothing is imported here: this file runs before any module of the package, and the command line
imports `seqdiff.protein.family_settings` while it builds its parser, which must not load torch. The
adapter (`seqdiff.protein.model`) registers ESM-2 with the core.
"""
