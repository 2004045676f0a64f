"""The test session provides 8 simulated CPU devices for multi-device tests."""

import jax


def test_eight_simulated_devices():
    assert jax.device_count() == 8
