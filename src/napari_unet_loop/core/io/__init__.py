"""Reading and writing: image stacks in (TIFF, OME-TIFF, zarr, OME-Zarr, folders), labels out."""
