"""Benchmarks: ``sam2-onnx bench`` (torch eager vs onnxruntime), its worker processes and chart."""
