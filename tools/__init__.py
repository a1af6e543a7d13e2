"""Developer tools run on demand (never collected by pytest, never run by CI)."""
