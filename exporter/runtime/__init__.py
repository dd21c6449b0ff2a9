"""The torch-free runtime: ONNX Runtime + numpy + pillow, nothing else.

    from exporter.runtime import SAM2OnnxPredictor
    predictor = SAM2OnnxPredictor("artifacts/sam2.1_hiera_tiny")
    predictor.set_image(image)                     # HxWx3 uint8 RGB or PIL image
    masks, scores, logits = predictor.predict(point_coords=[[500, 375]], point_labels=[1])
    records = SAM2OnnxAutomaticMaskGenerator(predictor).generate(image)   # everything, no prompts

Never imports torch, torchvision, sam2 or cv2 (a test checks), nor any part of ``exporter``
that does: only contract, manifest, digests and errors, which use the standard library.
"""

from .automask import AutomaskParams, SAM2OnnxAutomaticMaskGenerator
from .predictor import Embedding, SAM2OnnxPredictor
from .sessions import PRECISIONS, load_sessions

__all__ = [
    "PRECISIONS",
    "AutomaskParams",
    "Embedding",
    "SAM2OnnxAutomaticMaskGenerator",
    "SAM2OnnxPredictor",
    "load_sessions",
]
