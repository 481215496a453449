"""sdr2hdr: SDR video to HDR10 video with JSInet / JSI-GAN (Kim, Oh and Kim, AAAI 2020)."""

__version__ = "0.1.0"
