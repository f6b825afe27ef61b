"""The tiny trained run of the training tests, for the notebook test."""

from tests.training.conftest import tiny_manifest, tiny_run  # noqa: F401
