"""Keras 3 frontend: build a Keras model from a Graph, import a user's model into one."""

from ..tfimport import tensorflow as _tensorflow

_tensorflow()
