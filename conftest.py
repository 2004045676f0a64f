"""Strict, shared test set-up: 8 simulated CPU devices, rank promotion raises."""

import os

# 8 simulated devices for the multi-device tests; the suite compiles thousands of tiny
# functions, so XLA's backend optimizations (worth nothing at these sizes) are turned off.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# The golden-value scripts import torch and set global JAX flags: they are run
# by hand (see tests/reference/README.md), never collected.
collect_ignore_glob = ["tests/reference/*.py"]
