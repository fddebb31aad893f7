"""The end-to-end lifecycle demo (``shipyard demo``) and the training pipeline it runs."""

from shipyard.demo.lifecycle import DATASET, EXPERIMENT, run_demo
from shipyard.demo.pipeline import MODEL_NAME

__all__ = ["DATASET", "EXPERIMENT", "MODEL_NAME", "run_demo"]
