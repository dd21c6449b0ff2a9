"""SAM 1 graphs: segment_anything's ViT image encoder and its own ONNX decoder (``SamOnnxModel``).

The decoder is the official ``segment_anything.utils.onnx.SamOnnxModel`` with one fix (its crop),
so the graph is the one the segment-anything README exports and apps such as NimbusImage load; the encoder is
``Sam.image_encoder`` on the input ``SamPredictor`` prepares (``runtime/sam1_transforms.py``).
Names and shapes: ``core/contract.py`` SAM1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Sam1Encoder(nn.Module):
    """forward(input_image [1, 3, 1024, 1024] float32, normalised and padded) ->
    image_embeddings [1, 256, 64, 64]: what ``SamPredictor.set_torch_image`` stores as features."""

    def __init__(self, sam: nn.Module):
        super().__init__()
        self.image_encoder = sam.image_encoder

    @torch.no_grad()
    def forward(self, input_image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(input_image)


def sam1_decoder(sam: nn.Module, single_mask: bool = False) -> nn.Module:
    """The official ONNX decoder: forward(image_embeddings [1, 256, 64, 64], point_coords [L, N, 2],
    point_labels [L, N], mask_input [1, 1, 256, 256], has_mask_input [1], orig_im_size [2]) ->
    masks [L, 4, H, W] logits at the original size, iou_predictions [L, 4], low_res_masks
    [L, 4, 256, 256]. Every token's mask (``return_single_mask=False``): the runtime picks
    tokens 1..3 or 0 as ``SamPredictor`` does for ``multimask_output``. ``single_mask``: the
    official ``return_single_mask=True`` (the ``sam1_single`` profile), one mask per prompt
    ([L, 1, ...]) chosen by ``SamOnnxModel.select_masks``."""
    from segment_anything.utils.onnx import SamOnnxModel

    class Sam1OnnxDecoder(SamOnnxModel):
        """``SamOnnxModel`` with a crop the tracer keeps dynamic: the official
        ``masks[..., : int(h), : int(w)]`` turns the traced image's size into constants, so a
        graph traced on one size crops every other image wrongly. Slicing with 0-d tensors
        records the bounds as graph inputs' functions instead (same values, same arithmetic)."""

        def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
            masks = F.interpolate(masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
            prepadded = self.resize_longest_image_size(orig_im_size, self.img_size)
            masks = masks[..., : prepadded[0], : prepadded[1]]
            size = orig_im_size.to(torch.int64)
            return F.interpolate(masks, size=(size[0], size[1]), mode="bilinear", align_corners=False)

    return Sam1OnnxDecoder(sam, return_single_mask=single_mask)
