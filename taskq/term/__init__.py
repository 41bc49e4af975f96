"""Terminal views: rich tables that fit the screen, progress, the live watch."""
