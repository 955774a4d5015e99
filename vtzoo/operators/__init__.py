"""Model families, one folder each (config.py, model.py, convert.py, operator.py)."""
