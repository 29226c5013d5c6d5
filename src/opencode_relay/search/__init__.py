"""Full-text search over session titles and message text (see search/index.py)."""
