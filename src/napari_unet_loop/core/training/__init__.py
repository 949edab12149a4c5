"""Training: the train/fine-tune generator, losses, augmentation, datasets, correction rounds."""
