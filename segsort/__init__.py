"""The SegSort application: data, training, inference, metrics and entry points."""
