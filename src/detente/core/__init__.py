"""The pure core: volumes, geometry, separation and detection. No I/O, no framework."""
