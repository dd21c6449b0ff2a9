"""What graphs are checked on and how outputs are compared: the sample photo and prompts every
export, precision and release check runs, and the comparisons (relative L2, IoU, tolerances).
numpy + onnxruntime; only the export feed imports sam2 (its own preprocessing, at export time)."""
