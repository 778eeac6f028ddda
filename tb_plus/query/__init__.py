"""The query layer: pure numpy functions over the store's columns (downsampling, ranges, ...).

Nothing here reads files or imports anything heavy at package import time; routes call these
functions on the arrays `tb_plus.store.Logdir` hands out.
"""
