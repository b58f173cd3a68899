"""dcgan-mnist: a TensorFlow 2 port of yihui-he/GAN-MNIST's conditional DCGAN."""
import ctypes
import importlib.abc
import importlib.util
import os
import sys

from dcgan_mnist.cli import show_tensorflow_messages

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX.
# The project is measured on two kinds of 2-core machine: AVX-512 with bf16, where TensorFlow turns
# them on itself, and AVX2 only, where it would leave them off and convs would run on Eigen's
# generic kernels, about 1.34x slower per training iteration (docs/speed.md). Set before TensorFlow
# loads; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# With oneDNN on, TensorFlow takes tensors from its own pool and glibc's malloc serves the rest.
# glibc raises its mmap threshold whenever a large block is freed, after which large temporaries
# (decompressed data, graph tracing) stay in the heap instead of going back to the system;
# fixing it at its 128 KiB default lowers the peak RSS of a 60,000-image run by about 30 MB
# (docs/speed.md). Not with TensorFlow's stock allocator (oneDNN off), which takes every tensor
# from malloc: there the fixed threshold costs a page fault per large tensor (8 s of system time
# in 24 measured). M_MMAP_THRESHOLD is -3 in glibc's malloc.h; elsewhere this does nothing.
_onednn_pool = os.environ["TF_ENABLE_ONEDNN_OPTS"].lower() in ("1", "true")
if _onednn_pool and not os.environ.get("TF_ONEDNN_USE_SYSTEM_ALLOCATOR"):
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)
    except (OSError, AttributeError):
        pass

# TensorFlow prints CUDA and oneDNN notices to fd 2 while it loads, some from C++ before any
# log level applies. Users read this project's own log lines, so its import is silenced unless
# --verbose is on the command line (or DCGAN_MNIST_VERBOSE is set); cli.run applies --verbose to
# TensorFlow's later messages. The silencing waits for the first module that imports TensorFlow,
# so a command that never does (plot) does not load it, nor the Keras it brings.
# Keras, which TensorFlow imports as it loads, imports matplotlib.pyplot for its optional plotting
# helpers (keras.visualization), which nothing here calls: matplotlib is kept out while TensorFlow
# loads, so training and generating load none; plot.py and evaluate --confusion import it to draw.


def _load_silenced(load):
    def exec_module(module):
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            load(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
        show_tensorflow_messages(False)  # its Python-side messages too, until cli.run reads --verbose
    return exec_module


def _load_without_matplotlib(load):
    def exec_module(module):
        blocked = "matplotlib" not in sys.modules
        if blocked:
            sys.modules["matplotlib"] = None  # an ImportError to Keras's `try: import matplotlib.pyplot`
        try:
            load(module)
        finally:
            if blocked and sys.modules.get("matplotlib", ...) is None:
                del sys.modules["matplotlib"]
    return exec_module


class _LoadTensorFlow(importlib.abc.MetaPathFinder):
    """Finds tensorflow as usual, once, and loads it without matplotlib and, if silence, with fd 2
    pointed at /dev/null."""

    def __init__(self, silence):
        self.silence = silence

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = _load_silenced(spec.loader.exec_module) if self.silence else spec.loader.exec_module
            spec.loader.exec_module = _load_without_matplotlib(load)
        return spec


if "tensorflow" not in sys.modules:
    _silence = "--verbose" not in sys.argv and not os.environ.get("DCGAN_MNIST_VERBOSE")
    if _silence:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.meta_path.insert(0, _LoadTensorFlow(_silence))

__version__ = "0.1.0"
