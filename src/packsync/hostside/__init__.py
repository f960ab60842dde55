"""hostside: the standard-library code that runs on every machine that runs workers."""
