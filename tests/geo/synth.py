"""Old home of :mod:`tests.helpers.synth`, kept for the folders that still import ``from geo.synth import ...``
(tests/plan, tests/hardening); new code imports ``from tests.helpers.synth import ...``."""

from tests.helpers.synth import S2_DESCRIPTIONS, utm_scene, write_aoi, write_scene

__all__ = ["S2_DESCRIPTIONS", "utm_scene", "write_aoi", "write_scene"]
