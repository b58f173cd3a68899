"""dcgan-mnist: a TensorFlow 2 port of yihui-he/GAN-MNIST's conditional DCGAN."""
import os
import sys

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
