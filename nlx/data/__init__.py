"""Datasets, splits and label noise."""
