"""dcgan-mnist: a TensorFlow 2 port of yihui-he/GAN-MNIST's conditional DCGAN."""
import ctypes
import os
import sys

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX;
# elsewhere (AVX2 only, as on the 2-core machines this was measured on) convs run on Eigen's
# generic kernels, 1.3 to 1.5x slower per training iteration (docs/speed.md). Set before TensorFlow
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
# log level applies. Users read this project's own log lines, so the import is silenced unless
# --verbose is on the command line (or DCGAN_MNIST_VERBOSE is set).
if "--verbose" not in sys.argv and not os.environ.get("DCGAN_MNIST_VERBOSE") and "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _saved_fd = os.dup(2)
    _devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(_devnull, 2)
    try:
        import tensorflow as _tf  # noqa: F401
    finally:
        os.dup2(_saved_fd, 2)
        os.close(_saved_fd)
        os.close(_devnull)
    _tf.get_logger().setLevel("ERROR")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)

__version__ = "0.1.0"
