"""``Box``: a rectangle of a raster, used for work windows, regions and reads/writes alike."""

Box = tuple[int, int, int, int]
"""``(row0, col0, row1, col1)``, half-open: rows ``row0:row1`` and columns ``col0:col1``."""
