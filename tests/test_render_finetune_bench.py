"""bench/render_finetune.py's blend of a fine-tuned network with OIDN: the share is the one that scores best on
the held-out frame."""

import numpy as np

from bench.render_finetune import SHARES, blend_share


def test_blend_share_picks_the_best_share_on_the_held_out_frame():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.1, 4.0, (16, 16, 3)).astype(np.float32)
    error = rng.normal(0.0, 0.2, reference.shape).astype(np.float32)
    # errors of opposite sign cancel in the even mix
    assert blend_share(reference + error, reference - error, reference) == 0.5
    # a perfect network takes all, a perfect OIDN none
    assert blend_share(reference, reference + error, reference) == 1.0
    assert blend_share(reference + error, reference, reference) == 0.0
    # three times the network's error on OIDN's side: the blend leans to the network (3 / 4 of the way)
    assert blend_share(reference + error, reference - 3 * error, reference) in (0.7, 0.8)
    assert SHARES[0] == 0.0 and SHARES[-1] == 1.0
