"""Which photos each variant's parity runs on in CI (every prompt kind runs on every photo).

Every variant sees every prompt kind; every photo is seen by at least two variants; the
grayscale photo (camera) and the one larger than 1024 px (retina) run on both families.
``sam2.1_hiera_tiny`` (the default variant) gets all seven. The other variants get one or
two photos because each photo costs a full torch + ONNX encoder run, which dominates the CI
time for base_plus and large.
"""

from .cases import SAMPLES

PLAN = {
    "sam2.1_hiera_tiny": list(SAMPLES),
    "sam2_hiera_tiny": ["astronaut", "retina"],
    "sam2.1_hiera_small": ["coffee", "camera"],
    "sam2_hiera_small": ["rocket", "hubble"],
    "sam2.1_hiera_base_plus": ["chelsea"],
    "sam2_hiera_base_plus": ["camera"],
    "sam2.1_hiera_large": ["retina"],
    "sam2_hiera_large": ["coffee"],
}
