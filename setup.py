"""Packaging for tb-plus (TensorBoard+).

The C accelerator ``tb_plus.store._scan`` is optional: when ``tb_plus/store/_scan.c``
is missing, or when it fails to compile (no C compiler, no Python headers), the
install still succeeds and the store falls back to its pure-Python scanner.
"""

import os
import sys

import shutil
import subprocess

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SCAN_SOURCE = os.path.join("tb_plus", "store", "_scan.c")
FALLBACK_WARNING = (
    "tb_plus: C accelerator not built, falling back to the pure-Python scanner (slower)"
)


def _read_version():
    """Read ``__version__`` from tb_plus/__init__.py without importing the package."""
    path = os.path.join(HERE, "tb_plus", "__init__.py")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("__version__ not found in %r" % path)


def _read_readme():
    path = os.path.join(HERE, "README.md")
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


class OptionalBuildExt(build_ext):
    """build_ext that turns a failed compile into a warning instead of an error."""

    def run(self):
        self._failed = set()
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any failure means "no accelerator"
            self._warn(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._failed.add(ext.name)
            self._warn(e, ext.name)

    def copy_extensions_to_source(self):
        # Editable installs copy built modules into the tree; skip the ones that failed.
        kept = self.extensions
        self.extensions = [e for e in kept if e.name not in getattr(self, "_failed", ())]
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = kept

    @staticmethod
    def _warn(error, name=None):
        where = " (%s)" % name if name else ""
        bar = "*" * 78
        sys.stderr.write(
            "\n%s\n%s\nreason%s: %s: %s\n%s\n\n"
            % (bar, FALLBACK_WARNING, where, type(error).__name__, error, bar)
        )


FRONTEND = os.path.join(HERE, "tb_plus_frontend")
BUNDLE = os.path.join(HERE, "tb_plus", "static", "index.js")


def build_frontend():
    """npm install + npm run build in tb_plus_frontend/ -> tb_plus/static/index.{js,css}.

    A checkout needs Node.js (and npm) for this; a built wheel already carries the bundle.
    TB_PLUS_SKIP_FRONTEND=1 skips it (backend-only development: the tab's page then says what
    to build)."""
    if os.environ.get("TB_PLUS_SKIP_FRONTEND") == "1":
        return
    if not os.path.exists(os.path.join(FRONTEND, "package.json")):
        if os.path.exists(BUNDLE):
            return  # an sdist/wheel build from an unpacked archive that already has the bundle
        raise SystemExit("tb_plus: tb_plus_frontend/package.json is missing and no bundle was built")
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise SystemExit(
            "tb_plus: building the TB+ tab's frontend needs Node.js 18+ and npm, which were not found on PATH.\n"
            "Install them (e.g. `apt-get install nodejs npm`) and retry, or install a built wheel of tb-plus."
        )
    for cmd in ([npm, "install", "--no-audit", "--no-fund"], [npm, "run", "build"]):
        subprocess.check_call(cmd, cwd=FRONTEND)


class BuildPyWithFrontend(build_py):
    """build_py that first builds the frontend bundle into tb_plus/static/."""

    def run(self):
        build_frontend()
        super().run()


ext_modules = []
if os.path.exists(os.path.join(HERE, SCAN_SOURCE)):
    ext_modules.append(
        Extension(
            "tb_plus.store._scan",
            sources=[SCAN_SOURCE],
            extra_compile_args=["-O3"],
        )
    )

setup(
    name="tb-plus",
    version=_read_version(),
    description="TensorBoard+: a TensorBoard plugin that keeps every point of GB-scale logs",
    long_description=_read_readme(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["tb_plus", "tb_plus.*"]),
    include_package_data=True,
    # The C source goes into the sdist (it is an extension source), not into wheels.
    exclude_package_data={"": ["*.c"]},
    zip_safe=False,
    python_requires=">=3.9",
    install_requires=[
        "tensorboard>=2.12",
        "numpy>=1.22",
        "protobuf>=3.19",
        "werkzeug>=2.0",
        "google-crc32c>=1.5",
        # request patterns (tag filters, run groupings) run on RE2: linear time whatever the pattern
        "google-re2>=1.1",
    ],
    extras_require={
        # torch is pinned: a CPU wheel of 2.13.0 is available locally, while an
        # unpinned torch pulls a multi-GB CUDA build.
        "test": ["pytest", "psutil", "tensorboardX", "torch==2.13.0", "playwright==1.63.0", "scikit-learn",
                 # the S3 test stack pinned to one consistent set: s3fs needs aiobotocore, which pins botocore
                 # tightly, and moto wants the newest boto3; left free, pip backtracks for minutes and
                 # can settle on s3fs 0.4 or re-resolve torch to its CUDA build
                 "s3fs==2026.9.0", "aiobotocore==3.10.0", "boto3==1.43.117", "moto[server]==5.2.5",
                 # the tracer's one-line integrations (tb_plus.trace.hf, tb_plus.trace.lightning)
                 "transformers==5.25.0", "accelerate==1.16.0", "lightning==2.6.6",
                 # reinforcement-learning trainings for the RL diagnostics' tests and corpus (CartPole, no download)
                 "stable-baselines3==2.9.2", "gymnasium==1.4.0",
                 # Logdir.frame's backends (none is a dependency) and tbparse, the reference the frames are tested against
                 "pandas==3.1.1", "polars==2.1.0", "pyarrow==26.0.1", "tbparse==0.0.9"],
        # DataFrames of a log directory (Logdir.frame, tb-plus export to parquet): any of them
        "frame": ["pandas>=1.5", "pyarrow>=12"],
        "tf": ["tensorflow-cpu"],
        # object storage: the fsspec implementation of your store (s3fs, gcsfs, ...); none is required
        "s3": ["s3fs>=2023.1"],
        "gcs": ["gcsfs>=2023.1"],
    },
    ext_modules=ext_modules,
    package_data={"tb_plus": ["static/*", "http_api.md"]},
    cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithFrontend},
    entry_points={
        "console_scripts": ["tb-plus=tb_plus.cli:main"],
        "tensorboard_plugins": ["tb_plus=tb_plus.plugin:TbPlusLoader"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Visualization",
    ],
)
