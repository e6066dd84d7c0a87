"""Errors a user can cause. The CLI turns any of these into one line and a non-zero exit."""


class InpaintError(ValueError):
    """A request that cannot be carried out as given (bad option, impossible plan, ...)."""


class DeviceError(InpaintError):
    """The requested compute device does not exist on this machine."""


class RasterError(InpaintError):
    """A raster cannot be read or written as asked (missing, corrupt, unsupported, unwritable)."""


class OutputExistsError(RasterError):
    """The output file exists and overwriting was not allowed."""
