"""The procedural family: a non-neural movement model whose every constant is fitted to the training split."""

from .config import FAMILY, ProceduralConfig
from .model import ProceduralModel

__all__ = ["FAMILY", "ProceduralConfig", "ProceduralModel"]
