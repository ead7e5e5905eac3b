"""The face engine, shared by the platform and the device software (docs/biometrics.md).

Photo → checked face → embedding (``engine``), 1:1 decisions (``compare``), revocable templates
(``template``) and active liveness (``liveness``). Imports only ``anju.kit`` and ``anju.errors``
(an import-linter contract), so ``anju.device`` may use it; every model comes from a package.
"""
