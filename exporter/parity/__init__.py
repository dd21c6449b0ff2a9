"""Reference parity: exported artifacts vs the official SAM2ImagePredictor (cases, metrics, engine, report)."""
