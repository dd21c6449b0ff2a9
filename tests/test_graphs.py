"""Graph wrappers: equal to the official SAM2ImagePredictor in torch, and through ONNX Runtime.

Random weights (seed 0) stand in for official checkpoints, which cannot be downloaded here.
The ONNX round trip uses a plain torch.onnx.export of the wrappers; the full export pipeline
(simplification, manifest, atomic output) is issue #3 and will take over these fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor

from exporter import contract as C
from exporter.checkpoints.loading import random_model
from exporter.graphs import ImageEncoder, PromptDecoder
from exporter.variants import all_variants, resolve


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
    _, scores, low_res = predictor.predict(point_coords=points, point_labels=labels, box=box,
                                           multimask_output=multimask, return_logits=True)
    xy = [box.reshape(2, 2)] if box is not None else []
    lab = [[C.LABEL_BOX_TL, C.LABEL_BOX_BR]] if box is not None else []
    if points is not None:
        xy.append(points)
        lab.append(labels)
    coords = _to_frame(np.concatenate(xy), image)[None]
    labels_t = torch.tensor(np.concatenate(lab), dtype=torch.float32)[None]
    for mask_input in (None, low_res[np.argmax(scores)][None]):
        if mask_input is not None:  # refinement: feed back the best low-res logits
            _, scores, low_res = predictor.predict(point_coords=points, point_labels=labels, box=box,
                                                   mask_input=mask_input, multimask_output=multimask,
                                                   return_logits=True)
        m_in = torch.zeros(1, 1, 256, 256) if mask_input is None else torch.as_tensor(mask_input)[None]
        has = torch.tensor([0.0 if mask_input is None else 1.0])
        masks, iou, single, single_iou = decoder(embed, f0, f1, coords, labels_t, m_in, has)
        ours, our_scores = (masks, iou) if multimask else (single, single_iou)
        # the official predictor clamps the low-res logits it returns; the graph does not
        torch.testing.assert_close(ours.clamp(-C.LOW_RES_CLAMP, C.LOW_RES_CLAMP)[0],
                                   torch.as_tensor(low_res), atol=1e-5, rtol=0)
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
        C.STABILITY_DELTA, C.STABILITY_THRESH)
    assert model.image_size == C.IMAGE_SIZE
    # the wrappers reshape to the contract's shapes; the model's own channel counts must agree
    assert [md.conv_s0.out_channels, md.conv_s1.out_channels, model.hidden_dim] == [
        s.shape[1] for s in C.ENCODER_OUTPUTS]
    assert 4 * model.sam_prompt_encoder.image_embedding_size[0] == C.LOW_RES_SIZE
    for variant in all_variants():
        assert variant.features == {s.name: s.shape[1:] for s in C.ENCODER_OUTPUTS}


# --- through ONNX Runtime -------------------------------------------------------------------

def _export(module, args, path, inputs, outputs):
    torch.onnx.export(module, args, str(path), input_names=C.names(inputs),
                      output_names=C.names(outputs), dynamic_axes=C.dynamic_axes(inputs, outputs),
                      opset_version=resolve("tiny").opset, dynamo=False)
    # The TorchScript exporter leaves reshaped outputs with made-up symbolic dims; ONNX's own
    # strict shape inference (with data propagation) recovers the static ones.
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True, data_prop=True)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _io_matches_contract(path, inputs, outputs):
    graph = onnx.load(str(path)).graph
    for declared, actual in ((inputs, graph.input), (outputs, graph.output)):
        assert [v.name for v in actual] == C.names(declared)
        for spec, value in zip(declared, actual):
            t = value.type.tensor_type
            assert onnx.helper.tensor_dtype_to_np_dtype(t.elem_type) == np.dtype(spec.dtype)
            dims = [d.dim_param or d.dim_value for d in t.shape.dim]
            assert len(dims) == len(spec.shape)
            for want, got in zip(spec.shape, dims):
                # symbolic dims must stay symbolic in the file; fixed ones must be exact
                assert isinstance(got, str) if isinstance(want, str) else got == want, (spec.name, dims)


@pytest.fixture(scope="module")
def onnx_tiny(tiny, tmp_path_factory):
    _, encoder, decoder = tiny
    root = tmp_path_factory.mktemp("onnx")
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    enc = _export(encoder, (x,), root / C.ENCODER_FILE, C.ENCODER_INPUTS, C.ENCODER_OUTPUTS)
    f0, f1, embed = encoder(x)
    args = (embed, f0, f1, torch.rand(2, 3, 2) * 1024, torch.tensor([[1.0, 0, -1], [2, 3, 1]]),
            torch.randn(2, 1, 256, 256), torch.tensor([0.0, 1.0]))
    dec = _export(decoder, args, root / C.DECODER_FILE, C.DECODER_INPUTS, C.DECODER_OUTPUTS)
    return root, enc, dec


def test_onnx_io_matches_contract(onnx_tiny):
    root, _, _ = onnx_tiny
    _io_matches_contract(root / C.ENCODER_FILE, C.ENCODER_INPUTS, C.ENCODER_OUTPUTS)
    _io_matches_contract(root / C.DECODER_FILE, C.DECODER_INPUTS, C.DECODER_OUTPUTS)


def _rel_l2(got, want):
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def test_onnx_encoder_matches_torch_for_batch_of_two(tiny, onnx_tiny, photo):
    _, encoder, _ = tiny
    _, enc, _ = onnx_tiny
    x = torch.cat([photo[2], torch.flip(photo[2], dims=[3])])  # B = 2, two different images
    got = enc.run(None, {"image": x.numpy()})
    for spec, g, w in zip(C.ENCODER_OUTPUTS, got, encoder(x)):
        assert g.shape == (2, *spec.shape[1:])
        assert _rel_l2(g, w.numpy()) < 1e-5, spec.name


@pytest.mark.parametrize("prompts, points", [(1, 1), (1, 3), (4, 1), (4, 3)])
def test_onnx_decoder_matches_torch(tiny, onnx_tiny, photo, prompts, points):
    _, _, decoder = tiny
    _, _, dec = onnx_tiny
    _, _, _, (f0, f1, embed) = photo
    g = torch.Generator().manual_seed(prompts * 10 + points)
    labels = torch.tensor([1.0, 0.0, 2.0, 3.0, -1.0])[torch.randint(0, 5, (prompts, points), generator=g)]
    labels[0, 0] = 1.0  # every prompt kind appears across the cases, and no prompt is all padding
    feeds = (embed, f0, f1, torch.rand(prompts, points, 2, generator=g) * 1024, labels,
             torch.randn(prompts, 1, 256, 256, generator=g) * 4, (torch.arange(prompts) % 2).float())
    got = dec.run(None, {n: v.numpy() for n, v in zip(C.names(C.DECODER_INPUTS), feeds)})
    for spec, g_, w in zip(C.DECODER_OUTPUTS, got, decoder(*feeds)):
        assert g_.shape == w.shape
        assert float(np.abs(g_ - w.numpy()).max()) < 1e-4, spec.name


def test_readme_documents_the_contract():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for group, direction in ((C.ENCODER_INPUTS, "in"), (C.ENCODER_OUTPUTS, "out"),
                             (C.DECODER_INPUTS, "in"), (C.DECODER_OUTPUTS, "out")):
        for s in group:
            assert f"| {direction} `{s.name}` | {s.dtype} | [{','.join(map(str, s.shape))}] |" in readme
