"""The backend API: trainings as operations (local or on the training host), the host's result
callback, the model store's strategies. ``ktrdr serve api`` serves ``create_app()``."""

from ktrdr.api.app import create_app

__all__ = ["create_app"]
