"""Model definitions, rebuilt from plain architecture specs (no pickled code)."""

from ktrdr.neural.mlp import ACTIVATIONS, build_mlp

__all__ = ["ACTIVATIONS", "build_mlp"]
