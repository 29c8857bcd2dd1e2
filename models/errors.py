"""Errors of the model layer that callers catch without loading torch or LightGBM."""


class ModelLoadError(RuntimeError):
    """A model directory is missing, incomplete, corrupt or built for other features."""
