"""Test-session setup: 8 fake CPU devices so sharded paths run on one machine."""
import os

# Must be set before JAX initialises its backend (DESIGN.md, Parallelism).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
