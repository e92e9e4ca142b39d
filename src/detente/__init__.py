"""detente: an open multi-party deconfliction service.

Parties declare 4D volumes (footprint x altitude band x time window) and red lines;
detente finds every pair of volumes of different parties closer than the separation
minima, and every entry into a red line. See ``docs/semantics.md``.
"""

__version__ = "0.1.0"
