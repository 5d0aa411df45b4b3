"""batchthumb: async, high-throughput batch processing of image renditions."""

__version__ = "0.1.0"
