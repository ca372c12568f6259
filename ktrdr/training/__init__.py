"""The training pipeline: one module per step (DESIGN.md §3)."""
