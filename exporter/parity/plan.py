"""Which photos each variant's parity runs on in the test suite (every prompt kind runs on
every photo), and which variants run in the release plan rather than in CI.

Every variant sees every prompt kind; every photo is seen by at least two variants in CI; the
grayscale photo (camera) and the one larger than 1024 px (retina) run on both families.
``sam2.1_hiera_tiny`` (the default variant) gets all seven. The other variants get one or
two photos because each photo costs a full torch + ONNX encoder run, which dominates the time
for base_plus and large. SAM 1's ViT-B runs in CI on two photos, ViT-L and ViT-H (whose
encoder keeps its weights in an external-data file) in the release plan.

``RELEASE_PLAN``: the two large SAM 2 variants' export-vs-torch and parity tests (about 13
minutes of the 2-core CI machine's 60), ViT-L's and ViT-H's parity and their checkpoint tests
are marked ``release_plan``; CI (``scripts/test.sh``) leaves them out and the release job runs
them (``scripts/test.sh --release-plan``), with the same checks.
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
    "sam_vit_b": ["camera", "rocket"],
    "sam_vit_l": ["astronaut"],
    "sam_vit_h": ["coffee"],
}

RELEASE_PLAN = ("sam2.1_hiera_large", "sam2_hiera_large", "sam_vit_l", "sam_vit_h")
