"""Evaluations beyond a run's own test split: walk-forward folds (``walk_forward``)."""
