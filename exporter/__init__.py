"""sam2-onnx: export SAM 2 to ONNX, prove parity, run without torch."""
