"""Length units of pixel sizes, read from a file's metadata and written back in each format's
own spelling, so a stack in nanometres is not labelled in micrometres on the way out.

Units are carried by their OME-Zarr (UDUNITS-2) names, which napari also understands;
``None`` means unknown. A file with pixel sizes but no unit is in micrometres, as OME-TIFF and
ImageJ assume.
"""

from __future__ import annotations

DEFAULT_UNIT = "micrometer"

# spelling found in files -> OME-Zarr name
_NAMES = {
    "angstrom": "angstrom",
    "å": "angstrom",
    "nm": "nanometer",
    "nanometer": "nanometer",
    "nanometre": "nanometer",
    "µm": "micrometer",
    "μm": "micrometer",  # the Greek mu, as some writers spell it
    "um": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "micrometer": "micrometer",
    "micrometre": "micrometer",
    "mm": "millimeter",
    "millimeter": "millimeter",
    "millimetre": "millimeter",
    "cm": "centimeter",
    "centimeter": "centimeter",
    "m": "meter",
    "meter": "meter",
}
# OME-Zarr name -> OME-TIFF symbol, ImageJ word
_SYMBOLS = {
    "angstrom": ("Å", "angstrom"),
    "nanometer": ("nm", "nm"),
    "micrometer": ("µm", "micron"),
    "millimeter": ("mm", "mm"),
    "centimeter": ("cm", "cm"),
    "meter": ("m", "m"),
}


def unit_name(text: object) -> str | None:
    """The OME-Zarr name of a length unit as files spell it ("µm", "micron", "nm"...); None for
    an unknown one or none (pixels)."""
    if not isinstance(text, str):
        return None
    # ImageJ headers may spell µ as the escape "\\u00B5"
    return _NAMES.get(text.strip().lower().replace("\\u00b5", "µ"))


def ome_tiff_symbol(name: str | None) -> str:
    """The OME-TIFF ``PhysicalSize*Unit`` for a unit name (µm when unknown)."""
    return _SYMBOLS.get(name or DEFAULT_UNIT, _SYMBOLS[DEFAULT_UNIT])[0]


def imagej_word(name: str | None) -> str:
    """The ImageJ header's ``unit=`` for a unit name (micron when unknown)."""
    return _SYMBOLS.get(name or DEFAULT_UNIT, _SYMBOLS[DEFAULT_UNIT])[1]
