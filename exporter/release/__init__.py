"""The release folder: files, checksums, model card, proofs, and its verification and push."""
