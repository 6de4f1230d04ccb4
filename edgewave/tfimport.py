"""Import TensorFlow without its C++ start-up chatter on the user's terminal."""

from __future__ import annotations

import os
import sys
import warnings


def tensorflow():
    """The tensorflow module, imported once with fd 2 silenced (absl/oneDNN/CUDA notices)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    return tf
