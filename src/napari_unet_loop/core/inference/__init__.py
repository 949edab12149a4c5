"""Running a model: tiling, prediction, post-processing, object scale, uncertainty, batches."""
