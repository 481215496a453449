"""Video I/O: probing, decoding to model input, HDR10 encoding, the sample clip."""
