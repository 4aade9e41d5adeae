"""The warm-up (coin_lio.kernel_warmup, run by the node before it subscribes) exercises every
compiled kernel of the odometry, so no real scan waits for a compile. Checked in a fresh
interpreter, where nothing but the warm-up has run a kernel."""
from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import importlib, json, pkgutil
import coin_lio
from numba.core.registry import CPUDispatcher
from coin_lio.kernel_warmup import warm_up
warm_up()
helpers = {"coin_lio.core.motion_kernel.rodrigues", "coin_lio.core.motion_kernel.interp_row",  # only inside kernels
           "coin_lio.photometric.change_kernel.bounds_at", "coin_lio.core.robust_kernel.median_inplace",
           "coin_lio.core.robust_kernel.median_bracket", "coin_lio.photometric.projection_kernel.jacobian_one",
           # the library helpers' sampler (patches.sample_bilinear / sample_patches): tracking
           # samples in patch_kernel.track_kernel, so the odometry never runs it
           "coin_lio.photometric.patch_kernel.bilinear_kernel",
           # the per-pixel reach in array form, tested against OpenCV; in_free_space inlines it
           "coin_lio.core.free_space_kernel.neighbourhood_reach",
           # inside nms_flat_kernel / degeneracy_pick_kernel; from Python only in the random-mode
           # ablation's candidates, the turns' reference and ImageModel.project_jacobian
           "coin_lio.photometric.candidate_kernel.greedy_nms_kernel",
           "coin_lio.photometric.candidate_kernel.round_robin_kernel",
           "coin_lio.photometric.projection_kernel.jacobian_kernel",
           # inside state_kernel.information_step; from Python only in its tests
           "coin_lio.core.small_linalg_kernel.solve_kernel"}
kernels = {}
for mod in pkgutil.walk_packages(coin_lio.__path__, "coin_lio."):
    if mod.name.endswith("_kernel"):
        m = importlib.import_module(mod.name)
        for name, obj in vars(m).items():
            full = f"{mod.name}.{name}"
            if isinstance(obj, CPUDispatcher) and obj.__module__ == m.__name__ and not name.startswith("_") \\
                    and full not in helpers:
                kernels[full] = len(obj.signatures)
print(json.dumps(kernels))
"""


def test_warm_up_runs_every_kernel():
    res = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    kernels = json.loads(res.stdout.strip().splitlines()[-1])
    assert len(kernels) >= 12, sorted(kernels)
    cold = sorted(name for name, n in kernels.items() if n == 0)
    assert not cold, f"kernels the warm-up never ran (the first real scan would compile them): {cold}"
