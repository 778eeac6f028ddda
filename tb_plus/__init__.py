"""TensorBoard+ (tb_plus): a TensorBoard plugin built on a persistent, incremental event store."""

__version__ = "0.1.0"
