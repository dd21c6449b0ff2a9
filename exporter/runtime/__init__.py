"""The torch-free runtime: ONNX Runtime + numpy + pillow, nothing else.

    from exporter.runtime import SAM2OnnxPredictor
    predictor = SAM2OnnxPredictor("artifacts/sam2.1_hiera_tiny")
    predictor.set_image(image)                     # HxWx3 uint8 RGB or PIL image
    masks, scores, logits = predictor.predict(point_coords=[[500, 375]], point_labels=[1])
    records = SAM2OnnxAutomaticMaskGenerator(predictor).generate(image)   # everything, no prompts
    SAM1OnnxPredictor("artifacts/sam_vit_b")       # SAM 1 folders: SamPredictor's API
    SAM1OnnxAutomaticMaskGenerator("artifacts/sam_vit_b")  # ... and SamAutomaticMaskGenerator's
    SAM2OnnxVideoPredictor("artifacts/sam2.1_hiera_tiny")  # SAM2VideoPredictor's API: tracking

Never imports torch, torchvision, sam2 or cv2 (a test checks), nor any part of ``exporter``
that does: only contract, manifest, digests and errors, which use the standard library.
"""

from .automask import AutomaskParams, SAM2OnnxAutomaticMaskGenerator
from .predictor import Embedding, SAM2OnnxPredictor
from .sam1_automask import Sam1AutomaskParams, SAM1OnnxAutomaticMaskGenerator
from .sam1_predictor import Sam1Embedding, SAM1OnnxPredictor
from .sessions import PRECISIONS, load_sessions
from .video_predictor import SAM2OnnxVideoPredictor

__all__ = [
    "PRECISIONS",
    "AutomaskParams",
    "Embedding",
    "SAM1OnnxAutomaticMaskGenerator",
    "SAM1OnnxPredictor",
    "Sam1AutomaskParams",
    "SAM2OnnxAutomaticMaskGenerator",
    "Sam1Embedding",
    "SAM2OnnxPredictor",
    "SAM2OnnxVideoPredictor",
    "load_sessions",
]
