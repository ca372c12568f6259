"""The model store: saved versions, their manifest, the artifact that travels, the pictures.

``ModelStorage`` writes and reads ``{models dir}/{strategy}/{SYMBOLS}_{TIMEFRAMES}_vN/``;
``ModelArtifact`` is a trained model as plain data; ``save_artifact_bytes`` is the one way bytes
from elsewhere (a worker, the host) become a saved version. It knows nothing of training: what
a strategy implies about its features comes from ``ktrdr.config.features``.
"""
