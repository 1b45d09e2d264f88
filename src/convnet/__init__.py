"""convnet: a readable convolutional-network engine in NumPy."""
__version__ = "0.1.0"
