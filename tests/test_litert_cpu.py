"""The litert-cpu delegate (LiteRT CompiledModel) gives the classic Interpreter's answers."""

from __future__ import annotations

import numpy as np
import pytest

from accel.delegates import Variant, get_delegate
from accel.model import default_model_path, load_model


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_model_matches_interpreter(threads: int) -> None:
    model = load_model(default_model_path())
    x = np.random.default_rng(3).integers(0, 256, (1, 320, 320, 3), dtype=np.uint8)
    ref = get_delegate("cpu-reference").open(model, Variant("cpu-reference", (("threads", 1),)))
    cm = get_delegate("litert-cpu").open(model, Variant("litert-cpu", (("threads", threads),)))
    try:
        want, got = ref.run([x]), cm.run([x])
        assert [o.shape for o in got] == [t.shape for t in model.outputs]  # graph order, not signature order
        for a, b in zip(want, got, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)
        assert cm.last_invoke_s > 0
    finally:
        ref.close()
        cm.close()


def test_unknown_kernel_mode_names_the_key() -> None:
    from accel.errors import ConfigError

    with pytest.raises(ConfigError, match="delegates.litert-cpu.kernel_mode: expected one of xnnpack"):
        get_delegate("litert-cpu").variants({"kernel_mode": "fast"})
