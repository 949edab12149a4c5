"""The compute core: no Qt and no napari, importable on a headless GPU machine."""
