"""Stage 6's consumer: run an exported artifact with the TVM runtime and numpy only."""

from .artifact import Artifact, read_artifact
from .predictor import Detection, Predictor

__all__ = ["Artifact", "Detection", "Predictor", "read_artifact"]
