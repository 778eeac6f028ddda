"""The event store: a lazily indexed, persistent, incremental loader for TensorBoard logs.

`from tb_plus.store import Logdir` is the public entry point (see logdir.py). Importing this
package loads nothing heavy; numpy and the rest load when Logdir is first used.
"""

__all__ = ["Logdir", "Series", "TensorDatum", "BlobRef", "Problem", "Progress", "RunInfo", "TagInfo"]


def __getattr__(name):
    if name in __all__:
        from tb_plus.store import logdir

        return getattr(logdir, name)
    raise AttributeError(name)
