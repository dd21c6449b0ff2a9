"""The foundation every layer stands on, exporter/runtime/ included: the I/O contract, the
manifest, errors, digests, atomic staging, the variant registry and the CPU description. No
torch, no onnxruntime."""
