"""Data: loaders for digits (embedded), MNIST IDX, CIFAR-10, image folders and npz; batching,
normalisation and augmentation.  Every loader returns NHWC float32 images with int64 labels in a
:class:`Dataset`.  See ``docs/data.md``.
"""
from .augment import Augmenter, random_crop, random_hflip
from .batching import Batch, BatchIterator, epoch_order
from .cifar import CIFAR10_CLASSES, load_cifar10, parse_cifar_binary, read_cifar_binary_batch, read_cifar_python_batch
from .dataset import Dataset, holdout_split, train_val_split
from .digits import load_digits
from .folder import load_image_folder, load_image_folder_splits
from .idx import load_mnist, read_idx, read_idx_stream
from .normalize import Normalizer
from .npz import load_npz, read_npz_arrays
from .safe_pickle import restricted_loads
from .spec import FORMATS, load, parse_spec

__all__ = [
    "Dataset", "holdout_split", "train_val_split",
    "load", "parse_spec", "FORMATS",
    "load_digits", "load_mnist", "read_idx", "read_idx_stream",
    "load_cifar10", "read_cifar_binary_batch", "read_cifar_python_batch", "parse_cifar_binary", "CIFAR10_CLASSES",
    "load_image_folder", "load_image_folder_splits", "load_npz", "read_npz_arrays", "restricted_loads",
    "Batch", "BatchIterator", "epoch_order", "Normalizer", "Augmenter", "random_crop", "random_hflip",
]
