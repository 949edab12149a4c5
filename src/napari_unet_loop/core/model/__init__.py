"""The network, model files and their metadata, shipped models, bioimage.io packages, devices."""
