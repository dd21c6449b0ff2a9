"""One nn.Module per exported graph, reusing the official sam2 submodules (torch + sam2, no files)."""

from .decoder import PromptDecoder
from .encoder import ImageEncoder
from .profiles import ProfileDecoder

__all__ = ["ImageEncoder", "ProfileDecoder", "PromptDecoder"]
