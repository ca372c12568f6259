"""How large a network ktrdr trains, saves and loads: one set of limits for the strategy schema,
the training step and a saved model's manifest, so that whatever trains also loads."""

from __future__ import annotations

# Far beyond what bar features can support; a typo such as hidden_layers [100000, 100000]
# (10 billion weights, ~40 GB) should be an error that names the cause, not an out-of-memory kill.
MAX_PARAMETERS = 50_000_000
# The deepest and widest an MLP ktrdr trains may be: the strategy schema and the saved model's
# manifest share these, so whatever trains also loads.
MAX_HIDDEN_LAYERS = 64
MAX_LAYER_WIDTH = 100_000
