"""Conversion: Graph -> op program -> quantized program -> TFLite models and manifest."""
