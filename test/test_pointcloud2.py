"""PointCloud2 <-> numpy by field name: layouts, padding, byte order, bad messages."""
from types import SimpleNamespace

import numpy as np
import pytest

from suite_tools.pointcloud2 import (OUSTER_ORIGINAL_DTYPE, FieldSpec, PointCloudFormatError,
                                     array_to_pointcloud2_parts, pointcloud2_to_array, xyz_array)


def _msg(arr, row_pad=0, bigendian=False):
    fields, step, h, w, data = array_to_pointcloud2_parts(arr)
    if bigendian:
        arr_be = arr.astype(arr.dtype.newbyteorder(">"))
        data = np.ascontiguousarray(arr_be).view(np.uint8).reshape(-1)
    rows = data.reshape(h, step * w)
    padded = np.concatenate([rows, np.zeros((h, row_pad), np.uint8)], axis=1)
    return SimpleNamespace(height=h, width=w, fields=fields, point_step=step, row_step=step * w + row_pad,
                           is_bigendian=bigendian, data=padded.tobytes(), is_dense=False)


def _ouster(h=4, w=8):
    a = np.zeros((h, w), OUSTER_ORIGINAL_DTYPE)
    rng = np.random.default_rng(1)
    for name in ("x", "y", "z", "intensity"):
        a[name] = rng.normal(size=(h, w))
    a["t"] = np.arange(w, dtype=np.uint32) * 97_000
    a["ring"] = np.arange(h)[:, None]
    return a


@pytest.mark.parametrize("row_pad", [0, 16])
@pytest.mark.parametrize("bigendian", [False, True])
def test_round_trip_with_padding_and_byte_order(row_pad, bigendian):
    a = _ouster()
    out = pointcloud2_to_array(_msg(a, row_pad, bigendian))
    assert out.shape == a.shape
    for name in a.dtype.names:
        np.testing.assert_array_equal(out[name], a[name])


def test_fields_read_by_name_in_any_order():
    dt = np.dtype({"names": ["t", "intensity", "z", "y", "x"], "formats": ["<u4", "<f4", "<f4", "<f4", "<f4"],
                   "offsets": [0, 4, 8, 12, 16], "itemsize": 20})
    a = np.zeros(5, dt)
    a["x"], a["y"], a["z"] = 1.0, 2.0, 3.0
    xyz = xyz_array(pointcloud2_to_array(_msg(a)))
    np.testing.assert_array_equal(xyz, np.tile([1.0, 2.0, 3.0], (5, 1)))


def test_rclpy_style_array_data_accepted():
    import array

    a = _ouster(2, 3)
    m = _msg(a)
    m.data = array.array("B", m.data)
    assert pointcloud2_to_array(m).shape == (2, 3)


@pytest.mark.parametrize("mutate, reason", [
    (lambda m: setattr(m, "data", m.data[:-1]), "data has"),
    (lambda m: setattr(m, "row_step", 3), "row_step"),
    (lambda m: setattr(m, "point_step", 0), "point_step"),
    (lambda m: setattr(m, "fields", [FieldSpec("x", 46, 7)]), "exceeds point_step"),
    (lambda m: setattr(m, "fields", [FieldSpec("x", 0, 42)]), "unknown datatype"),
    (lambda m: setattr(m, "fields", [FieldSpec("x", 0, 7), FieldSpec("x", 4, 7)]), "twice"),
])
def test_inconsistent_messages_raise_with_reason(mutate, reason):
    m = _msg(_ouster())
    mutate(m)
    with pytest.raises(PointCloudFormatError, match=reason):
        pointcloud2_to_array(m)


def test_missing_xyz_is_named():
    a = np.zeros(3, np.dtype([("intensity", "<f4")]))
    with pytest.raises(PointCloudFormatError, match="'x'"):
        xyz_array(pointcloud2_to_array(_msg(a)))


def test_empty_cloud():
    a = np.zeros((0,), OUSTER_ORIGINAL_DTYPE)
    assert pointcloud2_to_array(_msg(a)).size == 0
