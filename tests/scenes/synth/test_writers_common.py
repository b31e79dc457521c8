"""Properties of the writers' shared encoders and input checks (hypothesis)."""

from __future__ import annotations

import re
from dataclasses import replace

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import example, given, settings

from scenes.synth.writers.cityscapes import INSTANCE_LABEL_IDS, instance_ids
from scenes.synth.writers.common import WriterError, check_log, intensity_to_uint8, stable_token, stable_uuid
from scenes.synth.writers.kitti import MAX_DEPTH_M, depth_to_png


@settings(max_examples=60, deadline=None)
@given(log_id=st.text(min_size=0, max_size=12))
@example(log_id="0\n")  # a regex's `$` also matches before a final newline
def test_check_log_accepts_only_directory_safe_log_ids(handmade_log, log_id):
    log = replace(handmade_log, log_id=log_id, frames=tuple(replace(f, log_id=log_id) for f in handmade_log.frames) if log_id else handmade_log.frames)
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", log_id):
        check_log(log)
    else:
        with pytest.raises(WriterError, match="log_id"):
            check_log(log)


def test_check_log_names_the_bad_frame(handmade_log):
    frames = list(handmade_log.frames)
    frames[4], frames[5] = frames[5], frames[4]
    with pytest.raises(WriterError, match="strictly increasing"):
        check_log(replace(handmade_log, frames=tuple(frames)))
    frames = list(handmade_log.frames)
    frames[3] = replace(frames[3], log_id="other")
    with pytest.raises(WriterError, match=r"frames\[3\]\.log_id"):
        check_log(replace(handmade_log, frames=tuple(frames)))


@given(depth=hnp.arrays(np.float32, (4, 5), elements=st.floats(0.0, 400.0, width=32)))
def test_depth_png_encoding_round_trips_within_half_a_step(depth):
    decoded = depth_to_png(depth).astype(np.float64) / 256.0
    np.testing.assert_allclose(decoded, np.minimum(depth, MAX_DEPTH_M), atol=0.5 / 256 + 1e-6)
    assert np.all((decoded == 0) == (np.rint(depth * 256) == 0))


@given(
    labels=hnp.arrays(np.uint8, (6, 7), elements=st.sampled_from([7, 11, 23, 24, 26, 33])),
    instances=hnp.arrays(np.int32, (6, 7), elements=st.integers(0, 4)),
)
def test_instance_ids_decode_to_label_ids(labels, instances):
    encoded = instance_ids(labels, instances).astype(np.int64)
    objects = encoded >= 1000
    np.testing.assert_array_equal(np.where(objects, encoded // 1000, encoded), labels)
    is_instance_class = np.isin(labels, sorted(INSTANCE_LABEL_IDS))
    np.testing.assert_array_equal(objects, is_instance_class & (instances > 0))
    for label in np.unique(labels[objects]):
        # instance numbers of one class are 0..n-1, one per distinct simulator instance
        ks = np.unique(encoded[objects & (labels == label)] % 1000)
        assert ks.tolist() == list(range(len(np.unique(instances[objects & (labels == label)]))))


def test_ids_and_intensity_are_stable():
    assert stable_uuid("a", 1) == stable_uuid("a", 1) != stable_uuid("a", 2)
    assert re.fullmatch(r"[0-9a-f]{32}", stable_token("x"))
    assert intensity_to_uint8(np.array([0.0, 0.5, 1.0, 1.5, -1.0])).tolist() == [0, 128, 255, 255, 0]
