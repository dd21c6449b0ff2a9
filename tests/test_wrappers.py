"""Graph wrappers: equal to the official SAM2ImagePredictor in torch.

Random weights (seed 0) stand in for official checkpoints, which cannot be downloaded here.
The exported ONNX graphs are compared with these wrappers in test_export.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor

from exporter.checkpoints.loading import random_model
from exporter.core import contract as C
from exporter.core.variants import resolve, sam2_variants
from exporter.wrappers import ImageEncoder, PromptDecoder


@pytest.fixture(scope="module")
def tiny():
    model, _ = random_model(resolve("tiny"), 0)
    return model, ImageEncoder(model).eval(), PromptDecoder(model).eval()


@pytest.fixture(scope="module")
def photo(tiny):
    """A real, non-square photo (chelsea, 300x451) set in the official predictor."""
    model, encoder, _ = tiny
    image = skimage.data.chelsea()
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    x = predictor._transforms(image)[None]
    return image, predictor, x, encoder(x)


def _to_frame(xy: np.ndarray, image: np.ndarray) -> torch.Tensor:
    """Pixel coords of the original image -> the 1024 input frame, as the predictor scales them."""
    h, w = image.shape[:2]
    return torch.tensor(xy * np.array([C.IMAGE_SIZE / w, C.IMAGE_SIZE / h]), dtype=torch.float32)


def test_encoder_equals_set_image(photo):
    _, predictor, _, (f0, f1, embed) = photo
    assert torch.equal(embed, predictor._features["image_embed"])
    assert torch.equal(f0, predictor._features["high_res_feats"][0])
    assert torch.equal(f1, predictor._features["high_res_feats"][1])


CASES = {  # name -> (points, labels, box); labels as the official API takes them
    "fg point": (np.array([[220.0, 140.0]]), np.array([1]), None),
    "fg + bg points": (np.array([[220.0, 140.0], [60.0, 250.0]]), np.array([1, 0]), None),
    "box": (None, None, np.array([120.0, 40.0, 380.0, 290.0])),
    "box + bg point": (np.array([[300.0, 60.0]]), np.array([0]), np.array([120.0, 40.0, 380.0, 290.0])),
}


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_decoder_equals_predict(tiny, photo, case, multimask):
    _, _, decoder = tiny
    image, predictor, _, (f0, f1, embed) = photo
    points, labels, box = CASES[case]
    _, scores, low_res = predictor.predict(
        point_coords=points, point_labels=labels, box=box, multimask_output=multimask, return_logits=True
    )
    xy = [box.reshape(2, 2)] if box is not None else []
    lab = [[C.LABEL_BOX_TL, C.LABEL_BOX_BR]] if box is not None else []
    if points is not None:
        xy.append(points)
        lab.append(labels)
    coords = _to_frame(np.concatenate(xy), image)[None]
    labels_t = torch.tensor(np.concatenate(lab), dtype=torch.float32)[None]
    for mask_input in (None, low_res[np.argmax(scores)][None]):
        if mask_input is not None:  # refinement: feed back the best low-res logits
            _, scores, low_res = predictor.predict(
                point_coords=points,
                point_labels=labels,
                box=box,
                mask_input=mask_input,
                multimask_output=multimask,
                return_logits=True,
            )
        m_in = torch.zeros(1, 1, 256, 256) if mask_input is None else torch.as_tensor(mask_input)[None]
        has = torch.tensor([0.0 if mask_input is None else 1.0])
        masks, iou, single, single_iou = decoder(embed, f0, f1, coords, labels_t, m_in, has)
        ours, our_scores = (masks, iou) if multimask else (single, single_iou)
        # the official predictor clamps the low-res logits it returns; the graph does not
        torch.testing.assert_close(
            ours.clamp(-C.LOW_RES_CLAMP, C.LOW_RES_CLAMP)[0], torch.as_tensor(low_res), atol=1e-5, rtol=0
        )
        torch.testing.assert_close(our_scores[0], torch.as_tensor(scores), atol=1e-5, rtol=0)


def test_batched_boxes_equal_predict(tiny, photo):
    _, _, decoder = tiny
    image, predictor, _, (f0, f1, embed) = photo
    boxes = np.array([[10, 10, 200, 150], [100, 50, 400, 290], [0, 0, 450, 299], [250, 120, 300, 200.0]])
    _, scores, low_res = predictor.predict(box=boxes, multimask_output=True, return_logits=True)
    coords = _to_frame(boxes.reshape(-1, 2), image).reshape(4, 2, 2)
    labels = torch.tensor([[C.LABEL_BOX_TL, C.LABEL_BOX_BR]] * 4, dtype=torch.float32)
    masks, iou, _, _ = decoder(embed, f0, f1, coords, labels, torch.zeros(4, 1, 256, 256), torch.zeros(4))
    torch.testing.assert_close(masks.clamp(-32, 32), torch.as_tensor(low_res), atol=1e-5, rtol=0)
    torch.testing.assert_close(iou, torch.as_tensor(scores), atol=1e-5, rtol=0)


def test_contract_matches_model_and_configs(tiny):
    model, _, _ = tiny
    md = model.sam_mask_decoder
    assert md.dynamic_multimask_via_stability
    assert (md.dynamic_multimask_stability_delta, md.dynamic_multimask_stability_thresh) == (
        C.STABILITY_DELTA,
        C.STABILITY_THRESH,
    )
    assert model.image_size == C.IMAGE_SIZE
    # the wrappers reshape to the contract's shapes; the model's own channel counts must agree
    assert [md.conv_s0.out_channels, md.conv_s1.out_channels, model.hidden_dim] == [
        s.shape[1] for s in C.ENCODER_OUTPUTS
    ]
    assert 4 * model.sam_prompt_encoder.image_embedding_size[0] == C.LOW_RES_SIZE
    for variant in sam2_variants():
        assert variant.features == {s.name: s.shape[1:] for s in C.ENCODER_OUTPUTS}


def test_readme_documents_the_contract():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for group, direction in (
        (C.ENCODER_INPUTS, "in"),
        (C.ENCODER_OUTPUTS, "out"),
        (C.DECODER_INPUTS, "in"),
        (C.DECODER_OUTPUTS, "out"),
    ):
        for s in group:
            assert f"| {direction} `{s.name}` | {s.dtype} | [{','.join(map(str, s.shape))}] |" in readme


def test_io_contract_documents_every_profile():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "io-contract.md").read_text()
    for profile in C.PROFILES.values():
        for group, direction in (
            (profile.encoder_inputs, "in"),
            (profile.encoder_outputs, "out"),
            (profile.decoder_inputs, "in"),
            (profile.decoder_outputs, "out"),
        ):
            for s in group:
                row = f"| {direction} `{s.name}` | {s.dtype} | [{','.join(map(str, s.shape))}] | {s.meaning} |"
                assert row in doc, (profile.name, row)


def test_fast_forms_compute_the_official_outputs_and_are_undone(tiny, photo):
    """The export-time forms (wrappers/fast_forms.py) give the official decoder's outputs on a real
    photo and every prompt kind, and leave the eager model as sam2 wrote it afterwards."""
    from sam2.modeling.sam.mask_decoder import MaskDecoder
    from sam2.modeling.sam.transformer import Attention, TwoWayAttentionBlock
    from sam2.modeling.sam2_utils import LayerNorm2d

    from exporter.wrappers.fast_forms import fast_forms

    model, _, decoder = tiny
    hr0, hr1, embed = photo[3]
    # a click + background + padding, and a box + click; the second prompt refines a mask input
    mask_input = torch.randn(2, 1, 256, 256, generator=torch.Generator().manual_seed(0)) * 4
    args = (
        embed,
        hr0,
        hr1,
        torch.tensor([[[512.0, 400.0], [100.0, 900.0], [0.0, 0.0]]] * 2),
        torch.tensor([[1.0, 0.0, -1.0], [2.0, 3.0, 1.0]]),
        mask_input,
        torch.tensor([0.0, 1.0]),
    )
    # and 12 clicks on one prompt: more prompt tokens (19) than the reassociated attention's
    # break-even (16), where it does more work than the official form but must agree all the same
    many = (
        embed,
        hr0,
        hr1,
        torch.rand(1, 12, 2, generator=torch.Generator().manual_seed(1)) * 1024,
        torch.tensor([[1.0, 0.0] * 6]),
        mask_input[:1],
        torch.tensor([0.0]),
    )
    official = decoder(*args) + decoder(*many)
    with fast_forms(model) as swapped:
        fast = decoder(*args) + decoder(*many)
    norms = [m for m in model.modules() if isinstance(m, LayerNorm2d)]
    decoders = [m for m in model.modules() if isinstance(m, MaskDecoder)]
    blocks = [m for m in decoders[0].transformer.modules() if isinstance(m, TwoWayAttentionBlock)]
    attentions = [m for m in model.modules() if type(m) is Attention]
    # each block's two cross-attentions and the final one; the tokens' self-attentions keep theirs
    assert len(norms) > 0 and len(decoders) == 1 and len(blocks) == 2
    assert swapped == len(norms) + len(decoders) + 2 * len(blocks) + 1
    # the classes' methods are back: no instance attribute shadows them
    assert all("forward" not in vars(m) for m in norms + attentions) and "predict_masks" not in vars(decoders[0])
    for a, b in zip(official, fast):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=0, atol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(official[:4], decoder(*args)))
