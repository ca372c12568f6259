"""The training host service: runs trainings where the hardware is, never writes a model store.

``create_app()`` (``ktrdr.host_service.app``) builds the FastAPI app; ``ktrdr serve host`` serves
it (default 127.0.0.1:5002). Its client, ``ktrdr.runs.host_client.HostClient``, imports without
FastAPI: this package is the server only.
"""
