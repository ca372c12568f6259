"""ktrdr."""
