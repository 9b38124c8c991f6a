"""MobileNet v1 and v2 classifiers, from ``keras.applications`` with ``weights=None`` (seeded random weights).

keras.applications builds the published architectures: 1000 classes, float input in [-1, 1] (the models'
``preprocess_input``), softmax output [1, 1000]. Variants: ``mobilenet_v1_<alpha>_<size>``,
``mobilenet_v2_<alpha>_<size>``. One difference from the TF-Slim exports: Keras pads stride-2 depthwise
convolutions with explicit ZeroPadding2D (PAD ops) where Slim uses SAME padding; costs are the same.
"""

from __future__ import annotations

from typing import Any


def build_network(variant: str, seed: int, *, uint8_input: bool = False) -> Any:
    """The Keras classifier for ``variant`` (e.g. ``mobilenet_v1_0.25_128``)."""
    import keras

    family, version, alpha, size = variant.split("_")
    keras.utils.set_random_seed(seed)
    shape = (int(size), int(size), 3)
    if version == "v1":
        return keras.applications.MobileNet(input_shape=shape, alpha=float(alpha), weights=None)
    return keras.applications.MobileNetV2(input_shape=shape, alpha=float(alpha), weights=None)
