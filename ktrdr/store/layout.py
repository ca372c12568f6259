"""The files of a saved model version, by name (the manifest lists them with their hashes)."""

from __future__ import annotations

from ktrdr.store.plots import PICTURES

SCALER_FILE = "scaler.json"
# The pictures are optional: versions saved before they existed have none.
PICTURE_FILES = PICTURES
