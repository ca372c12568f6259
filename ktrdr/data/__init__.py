"""Market bars: the local store, CSV import, validation, timeframes, synthetic and sample bars."""
