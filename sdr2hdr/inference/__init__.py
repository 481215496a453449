"""Running a model on frames: device choice, model input/output conversion and tiling.

- :mod:`sdr2hdr.inference.device`: the one ``resolve_device`` (auto -> CUDA if present, else CPU).
- :mod:`sdr2hdr.inference.model_io`: decoded planes -> model input batch (uploaded as integers), decoded HDR10
  frames -> the model-output convention (the HDR10 codes themselves: :mod:`sdr2hdr.video.hdr10`).
- :mod:`sdr2hdr.inference.tiling`: overlapping tiles with blended seams, out-of-memory back-off.
"""
