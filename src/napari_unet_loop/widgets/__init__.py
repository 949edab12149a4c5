"""Dock widgets: thin views over ``napari_unet_loop.core``; all long work runs in workers."""
