"""Command-line entry points (`python3 -m scripts.NAME`)."""
import os

# TensorFlow, imported by some scripts for TFDS and TensorBoard files only (it computes nothing
# of a run), prints its oneDNN notice once per shared library at import unless oneDNN is off.
# Set here, before any script imports it.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
