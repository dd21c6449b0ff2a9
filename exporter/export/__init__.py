"""Export: the torch wrappers to ONNX files, their simplification and checks, and the
sample inputs and comparisons those checks use."""
