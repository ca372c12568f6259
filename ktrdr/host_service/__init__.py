"""The training host service: runs trainings where the hardware is, never writes a model store.

``create_app()`` builds the FastAPI app; ``ktrdr serve host`` serves it (default 127.0.0.1:5002).
``HostClient`` is how the backend and the library talk to it.
"""

from ktrdr.host_service.app import create_app
from ktrdr.host_service.client import HostClient, HostServiceError

__all__ = ["HostClient", "HostServiceError", "create_app"]
