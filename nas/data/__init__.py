"""Datasets: the registry, on-disk readers, splits, batches on the device and augmentation there."""
