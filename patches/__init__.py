"""Patch extraction, the one primitive every package cuts patches with (numpy or torch, any
device). Imports nothing of the project, so that every package may import it."""

from .extract import extract_patches, patch_view

__all__ = ["extract_patches", "patch_view"]
