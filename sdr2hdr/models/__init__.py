"""JSI-GAN models: the JSInet generator, the discriminator, the guided-filter
decomposition and the dynamic filtering ops (``ops``), and the losses
(``losses``).  See ``../shared/spec/jsi-gan.md``."""

from .discriminator import Discriminator
from .jsinet import JSInet
from .ops import decompose, depth_to_space_tf, detail_layer, guided_filter

__all__ = ["JSInet", "Discriminator", "guided_filter", "detail_layer", "decompose", "depth_to_space_tf"]
