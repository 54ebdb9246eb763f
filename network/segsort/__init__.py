"""The SegSort algorithm as pure TensorFlow functions (original module names kept)."""
