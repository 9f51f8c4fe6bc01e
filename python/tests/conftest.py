"""Devices the tests run on: the default OpenCL device (skipped, with the reason, where there is
none) and the reference path; one clattn.Context each for the session, so a shape compiles once.
The C tests run the kernels on every device; these test the binding, so one device is enough
(CLATTN_PYTEST_ALL_DEVICES=1 takes every device clattn lists)."""
import os

import numpy as np
import pytest

import clattn

if os.environ.get("CLATTN_PYTEST_ALL_DEVICES"):
    DEVICES = [d.spec for d in clattn.devices()]
else:
    DEVICES = ["", "reference"]  # "": $CLATTN_DEVICE, else the first GPU, else the first CPU device
_contexts = {}


def has_device():
    return any(d.spec != "reference" for d in clattn.devices())


@pytest.fixture(params=DEVICES, ids=lambda spec: spec or "default")
def context(request):
    spec = request.param
    if spec not in _contexts:
        _contexts[spec] = clattn.Context(spec)
    if spec != "reference" and _contexts[spec].is_reference:
        pytest.skip("no OpenCL device: the default device is the reference path")
    return _contexts[spec]


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


def normal(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def numpy_dtype(storage):
    """The NumPy dtype of a storage type; bfloat16 is ml_dtypes' (skipped, with the reason, where
    ml_dtypes is not installed)."""
    if storage != "bfloat16":
        return np.dtype(storage)
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes (NumPy's bfloat16) is not installed")
    return np.dtype(ml_dtypes.bfloat16)
