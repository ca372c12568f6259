"""Progress and cancellation shared by the library, the CLI and both services."""
