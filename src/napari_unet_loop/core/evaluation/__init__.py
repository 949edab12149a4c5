"""Scoring segmentations: metrics, label maps, evaluation against ground truth files."""
