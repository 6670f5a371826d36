"""Files: the data reader and model files."""
