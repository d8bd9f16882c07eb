"""Models shared by the stages."""
