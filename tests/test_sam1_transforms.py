"""SAM 1's numpy preprocessing (runtime/sam1_transforms.py) against segment_anything's own
ResizeLongestSide, Sam.preprocess and Sam.postprocess_masks, on real photos of several shapes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from exporter.core import contract as C
from exporter.parity.sam1_reference import sam1_official_input
from exporter.runtime.inputs import as_rgb
from exporter.runtime.sam1_transforms import (
    postprocess_masks,
    preprocess,
    preprocess_shape,
    resize_longest_side,
    transform_boxes,
    transform_coords,
)

# H x W: 300x451, 512x512, 1411x1411 (downscaled), 451x300 (portrait), 427x640
PHOTOS = {
    "chelsea": lambda: skimage.data.chelsea(),
    "astronaut": lambda: skimage.data.astronaut(),
    "retina": lambda: skimage.data.retina(),
    "chelsea_portrait": lambda: np.ascontiguousarray(skimage.data.chelsea().transpose(1, 0, 2)),
    "camera": lambda: as_rgb(skimage.data.camera()),
}
OFFICIAL = ResizeLongestSide(C.IMAGE_SIZE)


@pytest.mark.parametrize("name", PHOTOS)
def test_image_as_sam_predictor_prepares_it(name):
    image = PHOTOS[name]()
    assert np.array_equal(resize_longest_side(image), OFFICIAL.apply_image(image))
    x, input_hw = preprocess(image)
    assert input_hw == tuple(OFFICIAL.apply_image(image).shape[:2]) == preprocess_shape(image.shape[:2])
    assert x.shape == (1, 3, C.IMAGE_SIZE, C.IMAGE_SIZE) and x.dtype == np.float32
    np.testing.assert_allclose(x, sam1_official_input(image), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", PHOTOS)
def test_prompts_and_masks_as_the_official_transforms(name):
    hw = PHOTOS[name]().shape[:2]
    rng = np.random.default_rng(len(name))
    coords = rng.uniform(0, max(hw), (3, 5, 2))
    boxes = rng.uniform(0, max(hw), (4, 4))
    np.testing.assert_array_equal(
        transform_coords(coords, hw), torch.as_tensor(OFFICIAL.apply_coords(coords, hw), dtype=torch.float).numpy()
    )
    np.testing.assert_array_equal(
        transform_boxes(boxes, hw), torch.as_tensor(OFFICIAL.apply_boxes(boxes, hw), dtype=torch.float).numpy()
    )
    low_res = rng.normal(0, 8, (2, 3, C.LOW_RES_SIZE, C.LOW_RES_SIZE)).astype(np.float32)
    input_hw = preprocess_shape(hw)
    sam = SimpleNamespace(image_encoder=SimpleNamespace(img_size=C.IMAGE_SIZE))  # all postprocess_masks reads
    official = Sam.postprocess_masks(sam, torch.from_numpy(low_res), input_hw, hw).numpy()
    ours = postprocess_masks(low_res, input_hw, hw)
    assert ours.shape == official.shape == (2, 3, *hw)
    np.testing.assert_allclose(ours, official, rtol=0, atol=1e-4)
