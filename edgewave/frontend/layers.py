"""Keras layers edgewave adds to the standard set."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="edgewave")
class CausalPooling1D(keras.layers.Layer):
    """Dilated causal pooling: y[t] = avg/max of x[t - j*d], j = 0..size-1.

    Keras' AveragePooling1D/MaxPooling1D have neither dilation nor causal
    padding (the seed article's problem). The left padding is zeros, the same
    value a streaming ring buffer starts with.
    """

    def __init__(self, pooling_type="avg", pool_size=2, dilation_rate=1, **kwargs):
        super().__init__(**kwargs)
        if pooling_type not in ("avg", "max"):
            raise ValueError(f"pooling_type must be 'avg' or 'max', got {pooling_type!r}")
        self.pooling_type = pooling_type
        self.pool_size = int(pool_size)
        self.dilation_rate = int(dilation_rate)

    def call(self, inputs):
        pad = (self.pool_size - 1) * self.dilation_rate
        x = ops.pad(inputs, [[0, 0], [pad, 0], [0, 0]])
        length = ops.shape(inputs)[1]
        taps = [x[:, j * self.dilation_rate: j * self.dilation_rate + length, :] for j in range(self.pool_size)]
        stacked = ops.stack(taps, axis=0)
        return ops.mean(stacked, axis=0) if self.pooling_type == "avg" else ops.max(stacked, axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pooling_type": self.pooling_type, "pool_size": self.pool_size,
                "dilation_rate": self.dilation_rate}
